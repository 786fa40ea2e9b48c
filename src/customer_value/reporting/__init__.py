"""The scoring report, pure: a score frame (and optional horizon totals, model quality, drift and
the fitted model's referral figures) in, one self-contained HTML page out. No file I/O and no
MLflow here; ``pipeline/report.py`` writes it.

    sections.py     what the report shows, as plain data (tables, facts, figures, the drain list)
    formatting.py   how numbers and names read (money, percentages, headers)
    html.py         the page, rendered with the Jinja2 template in ``templates/``
"""
