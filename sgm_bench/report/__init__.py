"""Tables (CSV / Markdown / LaTeX) and seaborn figures for results/<config>/."""
