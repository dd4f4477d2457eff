"""Documents a training organisation hands a quality auditor: attendance sheets, charts, the audit pack.

Every document is built from `bot.reports.collect` (the rows behind the CSV files and `/peer report`), so a
number printed on a sheet, drawn on a chart or written in a spreadsheet is the same number everywhere.
Libraries do the drawing: fpdf2 (PDF), openpyxl (XLSX), matplotlib (PNG), Jinja2 (HTML).
"""
