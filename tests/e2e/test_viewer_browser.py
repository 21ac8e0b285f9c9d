"""The trace viewer in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by .ci/sandbox-setup.sh) driven by Selenium against the local
cloud, which serves the viewer's files at /viewer/ beside the API. The example trace is
driven to complete (offline judge); the test logs in with a token, opens the trace and
checks the verdict, the six scores, that a cited event's link scrolls to and focuses the
event, that a diff is rendered, that hostile trace content stays text, and that a flagged
QA verdict shows its evidence (resolution, why, target tests, flags, the held run's log)
as text. Screenshots go to the test's tmp path and to test-artifacts/viewer/ (gitignored),
kept for CI."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from boto3.dynamodb.types import TypeSerializer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from examples.snapshots import TRACE_DIR
from local_cloud.cloud import LocalCloud, LocalCloudInfo
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.pipeline.outcome import qa_summary
from prtrace.storage_keys import artifact_key
from tests.e2e.pipeline_support import TraceClient
from tests.integration.conftest import make_token, new_tenant
from tests.judge_factories import HOSTILE_PATH, HOSTILE_TEST, flagged_qa_report
from tests.local_cloud import aws

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "viewer"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloudInfo]:
    context = {"stage": "local", "destroy_data_on_delete": "true", "judge_mode": "offline"}
    state_dir = tmp_path_factory.mktemp("viewer-cloud")
    with LocalCloud(aws_port=0, api_port=0, state_dir=state_dir, context=context) as info:
        yield info


def hostile_copy(directory: Path) -> Path:
    """The example trace with markup and script in a diff and a note (data, never markup),
    and a 10-minute pause after its first event (an idle gap)."""
    shutil.copytree(TRACE_DIR, directory)
    for path in sorted(directory.glob("chunk-*.json")):
        chunk = orjson.loads(path.read_bytes())
        for event in chunk["events"]:
            if event["seq"] >= 1:  # 09:0m:ss -> 09:1m:ss, order kept
                event["ts"] = event["ts"].replace("T09:0", "T09:1", 1)
            if event["type"] == "file_edit":
                event["payload"]["diff"] += f"+# {HOSTILE}\n"
            if event["type"] == "rationale_note":
                event["payload"]["text"] += f" {HOSTILE}"
        path.write_bytes(orjson.dumps(chunk))
    return directory


@pytest.fixture(scope="module")
def traces(
    cloud: LocalCloudInfo, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A tenant with the example trace and its hostile copy complete: (token, example view,
    hostile view)."""
    tenant = new_tenant()
    token = make_token(cloud, tenant, ["ingest", "read"])
    client = TraceClient(cloud.endpoint, token, tenant)
    hostile_dir = hostile_copy(tmp_path_factory.mktemp("hostile") / "trace")
    ids = []
    for directory in (TRACE_DIR, hostile_dir):
        trace_id = client.upload(directory)
        assert client.finalize(trace_id, directory).status_code == 202
        ids.append(trace_id)
    views = []
    for trace_id in ids:
        view, _ = client.wait(trace_id)
        assert view["status"] == "complete", view
        views.append(view)
    return token, views[0], views[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    assert not missing, (
        f"headless Chromium is needed ({missing} missing): run `make sandbox` "
        "(apt-get install chromium chromium-driver)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1400", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest):
    """save(name): a screenshot in the test's tmp path and in test-artifacts/viewer/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(driver: WebDriver, name: str) -> Path:
        path = tmp_path / f"{request.node.name}-{name}.png"
        assert driver.save_screenshot(str(path)), f"no screenshot {name}"
        shutil.copyfile(path, ARTIFACTS / path.name)
        assert path.stat().st_size > 1000  # a real image, not an empty file
        return path

    return save


def wait_for(driver: WebDriver, css: str, timeout_s: float = 20) -> Any:
    return WebDriverWait(driver, timeout_s).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def log_in(driver: WebDriver, endpoint: str, token: str, fragment: str = "") -> None:
    driver.get(f"{endpoint}/viewer/{fragment}")
    field = wait_for(driver, "#token")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def open_trace(driver: WebDriver, endpoint: str, token: str, trace_id: str) -> None:
    """A fresh page load (a fragment change alone would re-render an already open page
    under the test's feet), logging in when the tab has no token."""
    driver.get("about:blank")
    driver.get(f"{endpoint}/viewer/#/traces/{trace_id}")
    if not driver.execute_script("return sessionStorage.getItem('prtrace.token')"):
        log_in(driver, endpoint, token, f"#/traces/{trace_id}")
    wait_for(driver, "ol.timeline li.event")


def severe_console_messages(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_viewer_is_served_with_its_security_headers(cloud):
    page = httpx.get(f"{cloud.endpoint}/viewer/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert (
        httpx.get(f"{cloud.endpoint}/viewer/app.js", timeout=10)
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert httpx.get(f"{cloud.endpoint}/viewer/../Makefile", timeout=10).status_code == 404
    assert httpx.get(f"{cloud.endpoint}/viewer/.git", timeout=10).status_code == 404


def test_log_in_list_and_open_the_example_trace(cloud, traces, browser, shots):
    token, example, _ = traces
    trace_id = example["trace_id"]
    log_in(browser, cloud.endpoint, token)
    row_link = wait_for(browser, f'a[href="#/traces/{trace_id}"]')
    # The token lives in this tab's session storage, never in local storage or a cookie.
    assert browser.execute_script("return sessionStorage.getItem('prtrace.token')") == token
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.get_cookies() == []
    shots(browser, "list")

    # Filters: the verdict filter keeps resolved traces and drops everything else.
    browser.find_element(By.CSS_SELECTOR, "#f-verdict option[value=unresolved]").click()
    assert not browser.find_elements(By.CSS_SELECTOR, f'a[href="#/traces/{trace_id}"]')
    browser.find_element(By.CSS_SELECTOR, "#f-verdict option[value=resolved]").click()
    row_link = wait_for(browser, f'a[href="#/traces/{trace_id}"]')

    row_link.click()
    verdict = wait_for(browser, "#qa-verdict [data-verdict]")
    qa = example["outcome"]["qa"]
    assert verdict.text == qa["verdict"] == "resolved"
    fail_to_pass = browser.find_element(By.CSS_SELECTOR, '[data-list="FAIL_TO_PASS"]')
    assert qa["fail_to_pass"]["ids"][0] in fail_to_pass.text
    # The verdict's evidence, as far as the QA report states it.
    if qa.get("resolution"):
        assert browser.find_element(By.ID, "qa-resolution").text == qa["resolution"]
    if qa.get("verdict_reason"):
        assert qa["verdict_reason"] in browser.find_element(By.ID, "qa-reason").text
    if (qa.get("target_tests") or {}).get("count"):
        targets = browser.find_element(By.CSS_SELECTOR, '[data-list="TARGETS"]')
        assert qa["target_tests"]["ids"][0] in targets.text
    for run in qa.get("runs") or {}:  # each run's log behind a button
        assert browser.find_elements(By.CSS_SELECTOR, f'#qa li[data-run="{run}"] button')
    assert not browser.find_elements(By.CSS_SELECTOR, "#qa li.flag.blocking")  # resolved

    # The six judge scores, as the API states them.
    judge = example["outcome"]["judge"]
    cards = browser.find_elements(By.CSS_SELECTOR, "#judge article.score")
    shown = {
        card.get_attribute("data-dimension"): int(
            card.find_element(By.CSS_SELECTOR, ".score-value").text
        )
        for card in cards
    }
    assert set(shown) == set(DIMENSION_IDS)
    assert len(shown) == 6
    assert shown == {s["dimension"]: s["score"] for s in judge["scores"]}
    assert browser.find_element(By.ID, "judge-overall").text == str(judge["overall"])
    head = browser.find_element(By.ID, "chain-head").text
    assert head == example["outcome"]["chain"]["head"]
    wait_for(browser, "ol.timeline li.event")
    lines = browser.find_element(By.ID, "view").text.splitlines()
    assert not {"null", "undefined", "[object Object]"} & {line.strip() for line in lines}
    assert browser.execute_script(  # nothing wider than the window: long ids wrap
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    shots(browser, "trace")

    # A diff, rendered line by line.
    edit = browser.find_element(By.CSS_SELECTOR, 'li.event[data-type="file_edit"]')
    added = [e.text for e in edit.find_elements(By.CSS_SELECTOR, "pre.diff span.add")]
    removed = [e.text for e in edit.find_elements(By.CSS_SELECTOR, "pre.diff span.del")]
    assert "+    if current is not None:" in added
    assert "-    if current is not None and not merged:" in removed
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", edit)
    shots(browser, "diff")

    # A cited event id links to its event: scrolled into view and focused.
    browser.execute_script("window.scrollTo(0, 0)")
    cite = browser.find_element(By.CSS_SELECTOR, "#judge a[data-cite]")
    cited = cite.get_attribute("data-cite")
    target = browser.find_element(By.ID, f"event-{cited}")
    assert not in_viewport(browser, target)  # the judge panel is far above the timeline
    cite.click()
    WebDriverWait(browser, 5).until(lambda d: d.switch_to.active_element == target)
    assert in_viewport(browser, target)
    assert "cited" in (target.get_attribute("class") or "")
    assert browser.current_url.endswith(f"#/traces/{trace_id}/events/{cited}")
    shots(browser, "cited-event")

    # Keyboard: the cited links and the artifact buttons are reachable with Tab.
    assert cite.tag_name == "a"
    assert cite.get_attribute("href")
    assert severe_console_messages(browser) == []  # no CSP violation, no script error


def test_a_command_output_artifact_is_fetched_through_the_api_link(cloud, traces, browser):
    token, example, _ = traces
    trace_id = example["trace_id"]
    open_trace(browser, cloud.endpoint, token, trace_id)
    command = wait_for(browser, 'li.event[data-type="cmd_run"]')
    assert command.find_element(By.CSS_SELECTOR, "[data-exit]").text == "1"
    command.find_element(By.XPATH, ".//button[starts-with(., 'Show stdout')]").click()
    output = WebDriverWait(browser, 10).until(
        lambda d: command.find_elements(By.CSS_SELECTOR, 'pre[aria-label="stdout"]')
    )[0]
    assert "1 failed" in output.text


def test_hostile_trace_content_is_shown_as_text(cloud, traces, browser, shots):
    token, _, hostile = traces
    trace_id = hostile["trace_id"]
    open_trace(browser, cloud.endpoint, token, trace_id)
    edit = wait_for(browser, 'li.event[data-type="file_edit"]')
    assert HOSTILE in edit.text
    assert browser.find_elements(By.CSS_SELECTOR, "#view img, #view script") == []
    assert browser.execute_script("return window.pwned === undefined")
    # The pause shows as an idle gap between the first two events.
    gap = browser.find_element(By.CSS_SELECTOR, "ol.timeline li.gap")
    assert gap.text == "idle 10.6 min"
    before = gap.find_element(By.XPATH, "preceding-sibling::li[1]")
    assert before.get_attribute("id") == "event-evt-0000"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", edit)
    shots(browser, "hostile")


def test_a_cited_event_is_reached_with_the_keyboard(cloud, traces, browser):
    token, example, _ = traces
    open_trace(browser, cloud.endpoint, token, example["trace_id"])
    cite = browser.find_element(By.CSS_SELECTOR, "#judge a[data-cite]")
    target = browser.find_element(By.ID, f"event-{cite.get_attribute('data-cite')}")
    browser.execute_script("arguments[0].focus()", cite)
    cite.send_keys(Keys.ENTER)
    WebDriverWait(browser, 5).until(lambda d: d.switch_to.active_element == target)
    assert in_viewport(browser, target)


def test_a_refused_token_returns_to_the_login(cloud, browser):
    browser.get(f"{cloud.endpoint}/viewer/")
    browser.execute_script("sessionStorage.clear()")
    log_in(browser, cloud.endpoint, "prt_not_a_real_token_at_all")
    status = wait_for(browser, "#token")
    assert status.is_displayed()
    assert "refused" in browser.find_element(By.ID, "status").text
    assert browser.execute_script("return sessionStorage.getItem('prtrace.token')") is None


def flag_the_qa_verdict(cloud: LocalCloudInfo, trace_id: str) -> str:
    """Give a complete trace a flagged QA verdict (repository-controlled hostile text in its
    test ids, paths and details) and a held run whose log is a stored artifact, as Record
    would have stored them; the log's text."""
    db = aws(cloud, "dynamodb")
    table = cloud.stack.outputs["TracesTableName"]
    (item,) = db.scan(
        TableName=table,
        FilterExpression="sk = :sk",
        ExpressionAttributeValues={":sk": {"S": f"TRACE#{trace_id}"}},
    )["Items"]
    tenant = item["pk"]["S"].removeprefix("T#")
    log = f"held run log {HOSTILE}\n4 passed, 1 failed\n"
    digest = hashlib.sha256(log.encode()).hexdigest()
    aws(cloud, "s3").put_object(
        Bucket=cloud.stack.outputs["DataBucketName"],
        Key=artifact_key(tenant, trace_id, digest),
        Body=log.encode(),
        ContentType="text/plain; charset=utf-8",
    )
    report = flagged_qa_report(
        trace_id=trace_id,
        verdict_reason=f"A target test was modified {HOSTILE}",
        held={"exit_code": 1, "duration_ms": 5, "passed": 4, "failed": 1,
              "log_key": artifact_key(tenant, trace_id, digest)},
    )  # fmt: skip
    db.update_item(
        TableName=table,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET outcome.qa = :qa",
        ExpressionAttributeValues={":qa": TypeSerializer().serialize(qa_summary(report))},
    )
    return log


def test_a_flagged_qa_verdict_shows_its_evidence_as_text(cloud, traces, browser, shots):
    token, _, hostile = traces
    trace_id = hostile["trace_id"]
    log = flag_the_qa_verdict(cloud, trace_id)
    severe_console_messages(browser)  # read (and so dropped): earlier tests' messages
    open_trace(browser, cloud.endpoint, token, trace_id)
    assert browser.find_element(By.CSS_SELECTOR, "#qa-verdict [data-verdict]").text == (
        "unresolved"
    )
    assert browser.find_element(By.ID, "qa-resolution").text == "partial"
    reason = browser.find_element(By.ID, "qa-reason")
    assert reason.text == f"Why: A target test was modified {HOSTILE}"
    targets = browser.find_element(By.CSS_SELECTOR, '[data-list="TARGETS"]')
    (unresolved,) = targets.find_elements(By.CSS_SELECTOR, "li.unresolved")
    assert unresolved.text == f"{HOSTILE_TEST} (unresolved)"
    for name, test_id in (
        ("FAIL_TO_ABSENT", "tests/test_ranges.py::test_gone"),
        ("FAIL_TO_SKIPPED", "tests/test_ranges.py::test_skipped"),
    ):
        assert browser.find_element(By.CSS_SELECTOR, f'[data-list="{name}"]').text == test_id
    flags = browser.find_elements(By.CSS_SELECTOR, "#qa-flags li.flag")
    assert [f.get_attribute("data-flag") for f in flags] == [
        "target_test_modified", "test_files_changed"
    ]  # fmt: skip
    blocking = browser.find_element(By.CSS_SELECTOR, "#qa-flags li.flag.blocking")
    assert blocking.get_attribute("data-flag") == "target_test_modified"
    assert "the definition of a target test changed <b>bold</b>" in blocking.text
    paths = [li.text for li in blocking.find_elements(By.CSS_SELECTOR, "ul li")]
    assert paths == [HOSTILE_TEST, HOSTILE_PATH.replace("\n", " ")]  # whitespace collapsed
    # Highlighted: the blocking flag's background differs from the others'.
    other = browser.find_element(By.CSS_SELECTOR, '#qa-flags li.flag[data-blocking="false"]')
    background = "return getComputedStyle(arguments[0]).backgroundColor"
    assert browser.execute_script(background, blocking) != browser.execute_script(background, other)
    # The held run's log, fetched through the artifact link like any other artifact.
    held = browser.find_element(By.CSS_SELECTOR, '#qa li[data-run="held"]')
    assert "4 passed, 1 failed" in held.text
    held.find_element(By.XPATH, ".//button[starts-with(., 'Show held log')]").click()
    shown = WebDriverWait(browser, 10).until(
        lambda d: held.find_elements(By.CSS_SELECTOR, 'pre[aria-label="held log"]')
    )[0]
    assert shown.text == log.strip()
    assert browser.find_elements(By.CSS_SELECTOR, "#view img, #view script, #view b") == []
    assert browser.execute_script("return window.pwned === undefined")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", blocking)
    shots(browser, "flagged-qa")
    assert severe_console_messages(browser) == []


def in_viewport(driver: WebDriver, element: Any) -> bool:
    return bool(
        driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return r.top >= 0 && r.bottom <= window.innerHeight;",
            element,
        )
    )
