"""Screenshots of the MLflow UI as a reader sees it (docs/mlflow_runs.png, docs/mlflow_run.png): the runs table
comparing the samplers of one model, and one sampler run's artifacts. Needs a running `mlflow ui` and Playwright
driving the system's Chromium (pip install playwright; not a project dependency):

    mlflow ui --backend-store-uri sqlite:///results/mlflow.db --port 5056 &
    python docs/screenshots.py --url http://127.0.0.1:5056 --model vp-digits
"""
import argparse
import re
import urllib.parse

from mlflow.tracking import MlflowClient
from playwright.sync_api import sync_playwright

COLUMNS = ["variant", "steps", "nfe", "fid", "fid_std", "seconds_per_sample"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:5056")
    ap.add_argument("--experiment", default="sgm-bench-default")
    ap.add_argument("--model", default="vp-digits")
    ap.add_argument("--run", default="edm_heun/18", help="variant/steps of the run whose artifacts are shown")
    ap.add_argument("--out", default="docs")
    a = ap.parse_args()
    client = MlflowClient(a.url)  # the UI server answers the tracking API
    exp = client.get_experiment_by_name(a.experiment)
    run = client.search_runs([exp.experiment_id], f"tags.`mlflow.runName` = '{a.model}/{a.run}'")[0]
    flt = urllib.parse.quote(f"tags.kind = 'sampler' and tags.model = '{a.model}'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 2100, "height": 1000})
        page.goto(f"{a.url}/#/experiments/{exp.experiment_id}/runs?searchFilter={flt}&orderByKey=metrics.%60fid%60"
                  "&orderByAsc=true")  # sorted by a metric, the child runs are listed flat
        page.wait_for_timeout(5000)
        close = page.get_by_role("button", name="Close")
        if close.count():
            close.first.click()
        for name in COLUMNS:  # the Columns menu: one choice per opening
            page.locator("button", has_text="Columns").first.click()
            page.wait_for_timeout(600)
            search = page.get_by_placeholder("Search columns")
            if search.count():
                search.last.fill(name)
                page.wait_for_timeout(400)
            page.locator(".du-bois-light-tree-title", has_text=re.compile(f"^{re.escape(name)}$")).first.click()
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)
        page.wait_for_timeout(1500)
        page.screenshot(path=f"{a.out}/mlflow_runs.png")
        page.goto(f"{a.url}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}/artifacts")
        page.wait_for_timeout(4000)
        grid = page.get_by_text(f"{a.run.replace('/', '_')}.png", exact=False)
        if grid.count():
            grid.first.click()
            page.wait_for_timeout(2000)
        page.screenshot(path=f"{a.out}/mlflow_run.png")
        browser.close()


if __name__ == "__main__":
    main()
