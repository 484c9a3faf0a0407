"""The web page to try a model (``python -m ernie.service.web``).

Tiny random ERNIE models (2 layers, hidden 32) exported with the repo's own export code: a
classifier whose label names come from its run's task.json (one of them ``<script>``), an NER
model served from its checkpoint (exported at start-up, as ``-m best/`` is), and the
classifier's encoder. The API is checked through starlette's TestClient against
``TextPredictor`` and scipy's softmax; the page itself in headless Chromium through Selenium
(skipped, saying why, where Chromium, its driver or selenium is missing: ``script/test.sh``
installs them with apt when run as root).
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import paddle
import pytest
from scipy.special import softmax

from ernie.checkpoint import save_pretrained
from ernie.export import export_ernie
from ernie.finetune.ner import MSRA_LABELS
from ernie.modeling import ErnieConfig, ErnieForSequenceClassification, ErnieForTokenClassification
from ernie.service.text_predictor import TextPredictor
from ernie.service.web import (BadRequest, WebPredictor, create_app, listen, main, model_export,
                               parse_request, tag_spans)
from propeller.cli import run_main
from propeller.service.server import wait_ready

starlette_testclient = pytest.importorskip("starlette.testclient", reason="starlette/httpx not installed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XSS = "<script>alert(1)</script>"
LABELS = [XSS, "neutral & co", "positive"]
REVIEWS = ["质量很好，推荐购买", "太差了，再也不买了", "物流一般般"]
INDEX = ["张三在北京工作", "李四去上海旅游", "质量很好推荐购买", "物流太慢了"]
MAX_CHARS = 50


def write_vocab(path):
    chars = sorted({c for t in REVIEWS + INDEX + ["王五住在广州", "<>&"] for c in t})
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + chars + ["abc"]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return len(tokens)


def save_run(model, d, vocab, task):
    """A fine-tuning run's best/: weights, config, vocab and task.json."""
    save_pretrained(model, str(d))
    shutil.copy(vocab, d / "vocab.txt")
    (d / "task.json").write_text(json.dumps(task, ensure_ascii=False), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("web")
    vocab = d / "vocab.txt"
    config = ErnieConfig(vocab_size=write_vocab(vocab), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    paddle.seed(3)
    cls_ckpt = save_run(ErnieForSequenceClassification(config, num_labels=3), d / "cls_best", vocab,
                        {"task": "classifier", "max_seqlen": 16, "num_labels": 3,
                         "label_map": {name: i for i, name in enumerate(LABELS)}})
    ner_ckpt = save_run(ErnieForTokenClassification(config, num_labels=7), d / "ner_best", vocab,
                        {"task": "ner", "max_seqlen": 16, "labels": list(MSRA_LABELS)})
    index = d / "index.txt"
    index.write_text("\n".join(INDEX) + "\n\n", encoding="utf-8")  # a blank line is skipped
    out = {"dir": d, "cls": export_ernie(str(cls_ckpt), str(d / "cls_export")),
           "enc": export_ernie(str(cls_ckpt), str(d / "enc_export"), encode_layer="pooler"),
           "ner_ckpt": str(ner_ckpt), "index": str(index)}
    out["cls_pred"] = WebPredictor.from_export(out["cls"])
    out["enc_pred"] = WebPredictor.from_export(out["enc"], index_file=str(index), top_k=3)
    # the NER model is served from its checkpoint, as `-m run/best` is: a temporary export
    with model_export(out["ner_ckpt"]) as ner_dir:
        assert ner_dir != out["ner_ckpt"]
        out["ner"] = WebPredictor.from_export(ner_dir)
        yield out
    assert not os.path.exists(ner_dir)


def client(predictor, **kw):
    return starlette_testclient.TestClient(create_app(predictor, max_chars=MAX_CHARS, **kw),
                                           raise_server_exceptions=False)


def post(c, body, **kw):
    return c.post("/api/predict", content=body if isinstance(body, (bytes, str)) else json.dumps(body),
                  headers={"Content-Type": "application/json", **kw.pop("headers", {})}, **kw)


# ---------------------------------------------------------------------------- classifier

def test_classifier_json_matches_text_predictor(models):
    tp = TextPredictor(models["cls"])
    logits, = tp.predict(REVIEWS)
    pair_logits, = tp.predict(REVIEWS[:1], REVIEWS[1:2])
    c = client(models["cls_pred"])
    info = c.get("/api/info").json()
    assert info["kind"] == "classification" and info["labels"] == LABELS and info["pairs"] is True
    for text, want in zip(REVIEWS, softmax(logits, axis=-1)):
        r = post(c, {"text": text})
        assert r.status_code == 200, r.text
        res = r.json()
        assert [x["label"] for x in res["labels"]] == LABELS
        np.testing.assert_allclose([x["prob"] for x in res["labels"]], want, atol=1e-6)
        assert res["top"] == LABELS[int(want.argmax())] and res["latency_ms"] > 0
    res = post(c, {"text": REVIEWS[0], "text_b": REVIEWS[1]}).json()
    np.testing.assert_allclose([x["prob"] for x in res["labels"]], softmax(pair_logits[0]), atol=1e-6)
    # max_seqlen 16 from the run's task.json: a long text is cut, and the answer says so
    res = post(c, {"text": "质量很好" * 10}).json()
    assert res["truncated"] is True and res["tokens"] == 16 == res["max_seqlen"]


def test_labels_found_above_best_inference(models, tmp_path):
    """A fine-tuning run's best_inference/inference has no task.json of its own: the run's is
    two levels up; without any, labels are the ids."""
    run = tmp_path / "run"
    shutil.copytree(models["cls"], run / "best_inference" / "inference")
    meta_path = run / "best_inference" / "inference" / "model_meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.pop("source")  # as BestInferenceModelExporter writes it
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    assert WebPredictor.from_export(str(run / "best_inference" / "inference")).labels == ["0", "1", "2"]
    shutil.copy(models["dir"] / "cls_best" / "task.json", run / "task.json")
    assert WebPredictor.from_export(str(run / "best_inference" / "inference")).labels == LABELS


def test_bad_requests_get_4xx_and_the_app_keeps_serving(models):
    c = client(models["cls_pred"])
    cases = [
        (b"not json", 400, "not JSON"),
        (b"\xff\xfe", 400, "UTF-8"),
        ([1, 2], 422, "JSON object"),
        ({}, 422, '"text" is missing'),
        ({"text": ""}, 422, "empty"),
        ({"text": "  \n "}, 422, "empty"),
        ({"text": 5}, 422, "must be a string, got a number"),
        ({"text": None}, 422, "must be a string, got null"),
        ({"text": "好", "text_b": ["x"]}, 422, '"text_b" must be a string'),
        ({"text": "好", "lang": "zh"}, 422, "unknown field"),
        ({"text": "好" * (MAX_CHARS + 1)}, 413, f"limit is {MAX_CHARS}"),
        ('{"text": "\\ud800"}', 400, "surrogate"),
    ]
    for body, status, msg in cases:
        r = post(c, body)
        assert r.status_code == status, (body, r.text)
        assert msg in r.json()["error"], (body, r.json())
        assert "Traceback" not in r.text
        assert post(c, {"text": REVIEWS[0]}).status_code == 200  # still serving
    r = c.post("/api/predict", content=json.dumps({"text": "好"}), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert c.get("/api/predict").status_code == 405
    # an NER model takes one text
    r = post(client(models["ner"]), {"text": "王五", "text_b": "广州"})
    assert r.status_code == 422 and "one text" in r.json()["error"]


def test_request_size_limit_before_parsing(models):
    c = client(models["cls_pred"])
    big = b'{"text": "' + b"x" * 100_000 + b'"}'
    r = post(c, big)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    # a chunked body (no Content-Length) is counted as it arrives
    r = c.post("/api/predict", content=iter([b'{"text": "', b"y" * 60_000, b'"}']),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert post(c, {"text": REVIEWS[1]}).status_code == 200


def test_page_escapes_labels_and_sets_csp(models):
    c = client(models["cls_pred"], title="<b>demo</b>")
    r = c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>demo</b>" not in html and "&lt;b&gt;demo&lt;/b&gt;" in html
    assert "neutral &amp; co" in html
    assert "innerHTML" not in html and "http://" not in html and "https://" not in html  # no CDN
    csp = r.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert html.count(f'nonce="{nonce}"') == 2 and "default-src 'none'" in csp
    assert c.get("/").headers["content-security-policy"] != csp  # a fresh nonce each time
    # the JSON answer carries the label as data, for the page to set as text
    assert post(c, {"text": "<>&"}).json()["labels"][0]["label"] == XSS


def test_host_check_when_bound_to_loopback(models):
    c = client(models["cls_pred"], allowed_hosts=["127.0.0.1", "localhost"])
    assert c.get("/", headers={"Host": "evil.example:8080"}).status_code == 400
    assert c.get("/", headers={"Host": "localhost:8080"}).status_code == 200


# ---------------------------------------------------------------------------- NER

def test_tag_spans_maps_tags_to_characters():
    text = "王五 住在\t广州abc😀"
    #  non-space chars: 王 五 住 在 广 州 a b c 😀
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "I-ORG", "I-ORG", "O", "B-PER"]
    ents, segs = tag_spans(text, tags, np.arange(10) / 10)
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in ents] == [
        ("PER", "王五", 0, 2), ("LOC", "广州", 6, 8), ("ORG", "ab", 8, 10), ("PER", "😀", 11, 12)]
    assert ents[0]["score"] == pytest.approx(0.05)
    assert "".join(s["text"] for s in segs) == text
    assert [s["type"] for s in segs] == ["PER", None, "LOC", "ORG", None, "PER"]
    # an entity spanning a space keeps it; an I- after O starts a chunk (the metric's rule)
    ents, _ = tag_spans("北 京", ["B-LOC", "I-LOC"])
    assert [(e["text"], e["start"], e["end"]) for e in ents] == [("北 京", 0, 3)]
    with pytest.raises(ValueError):
        tag_spans("北京", ["O"])


def test_ner_entities_follow_the_model(models):
    pred = models["ner"]
    assert pred.kind == "ner" and pred.labels == list(MSRA_LABELS)
    text = " 王五住在 广州 abc "
    res = post(client(pred), {"text": text}).json()
    # one token per non-space character, as NER fine-tuning feeds them (abc: a, b, c)
    tp, vocab = pred.predictor, pred.predictor.tokenizer.vocab
    chars = [c for c in text if not c.isspace()]
    ids = [vocab["[CLS]"]] + [vocab.get(c, vocab["[UNK]"]) for c in chars] + [vocab["[SEP]"]]
    logits = tp.predict_ids([ids])[0][0][1:-1]
    want = [MSRA_LABELS[k] for k in logits.argmax(-1)]
    assert res["tags"] == want
    ents, segs = tag_spans(text, want)
    assert [(e["type"], e["start"], e["end"]) for e in res["entities"]] == \
        [(e["type"], e["start"], e["end"]) for e in ents]
    assert "".join(s["text"] for s in res["segments"]) == text
    for e in res["entities"]:
        assert text[e["start"]:e["end"]] == e["text"] and 0 < e["score"] <= 1
    # past max_seqlen - 2 characters the tags are O, as in fine-tuning
    long = post(client(pred), {"text": "王五" * 12}).json()
    assert long["truncated"] and long["tags"][14:] == ["O"] * 10


# ---------------------------------------------------------------------------- encoder

def test_encoder_nearest_sentence_is_itself(models):
    pred = models["enc_pred"]
    c = client(pred)
    assert c.get("/api/info").json()["index_size"] == len(INDEX)
    for s in INDEX:
        res = post(c, {"text": s}).json()
        assert res["kind"] == "encoder" and len(res["neighbours"]) == 3
        assert res["neighbours"][0]["text"] == s
        assert res["neighbours"][0]["score"] == pytest.approx(1.0, abs=1e-5)
        scores = [n["score"] for n in res["neighbours"]]
        assert scores == sorted(scores, reverse=True)
    assert "Search" in c.get("/").text


def test_command_line_errors_are_one_line(models, tmp_path, capsys):
    def run(*argv):
        rc = run_main(main, list(argv), prog="web")
        return rc, capsys.readouterr().err

    rc, err = run("-m", str(tmp_path / "missing"), "--port", "0")
    assert rc == 2 and "No such file or directory" in err and "Traceback" not in err
    (tmp_path / "junk").mkdir()
    rc, err = run("-m", str(tmp_path / "junk"), "--port", "0")
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    rc, err = run("-m", models["enc"], "--port", "0")  # an encoder needs an index
    assert rc == 2 and "--index_file" in err
    rc, err = run("-m", models["cls"], "--max_chars", "0")
    assert rc == 2 and "--max_chars" in err
    taken = listen("127.0.0.1", 0)
    try:
        rc, err = run("-m", models["cls"], "--port", str(taken.getsockname()[1]))
        assert rc == 2 and "Address already in use" in err and err.count("\n") == 1
    finally:
        taken.close()


def test_parse_request_is_pure():
    assert parse_request(b'{"text": "a", "text_b": ""}', 10) == ("a", None)
    assert parse_request(b'{"text": "a", "text_b": "b"}', 10) == ("a", "b")
    with pytest.raises(BadRequest) as e:
        parse_request(b'{"text": "a", "text_b": "b"}', 10, pairs=False)
    assert e.value.status == 422
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"text": ' + b"9" * 5000 + b"}"):  # too deep, too long a number
        with pytest.raises(BadRequest) as e:
            parse_request(body, 10)
        assert e.value.status == 400


# ---------------------------------------------------------------------------- a real browser

def find_browser():
    """(chromium, chromedriver) paths, or skip the test saying what is missing."""
    pytest.importorskip("selenium", reason="selenium not installed (pip install -r requirements-test.txt)")
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        pytest.skip("no Chromium or chromedriver on PATH (apt-get install chromium chromium-driver; "
                    "script/test.sh does it when run as root)")
    return chrome, driver


def start_server(model_dir, *args, **env):
    """``python -m ernie.service.web`` on a free port of 127.0.0.1: (process, url)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    proc = subprocess.Popen([sys.executable, "-m", "ernie.service.web", "-m", str(model_dir), "--port", "0",
                             *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    url = wait_ready(proc, 90)
    if url is None:
        proc.kill()
        raise AssertionError(f"the web server did not start (exit status {proc.wait()})")
    return proc, url


def open_browser(chrome, driver, width=900, height=620):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def predict_in_page(browser, url, text):
    """Type ``text``, click Predict, wait for the bars; returns [(label, prob, shown text)]."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    old = browser.find_element(By.ID, "latency").text
    browser.find_element(By.ID, "predict").click()
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "latency").text not in ("", old))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result .bar-row")
    return [(r.find_element(By.CLASS_NAME, "bar-label").text, float(r.get_attribute("data-prob")),
             r.find_element(By.CLASS_NAME, "bar-value").text) for r in rows]


def test_page_in_headless_chromium(models, tmp_path):
    chrome, driver = find_browser()
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    # served from the checkpoint (a run's best/): exported at start-up into TMPDIR, removed at exit
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc, url = start_server(models["dir"] / "cls_best", TMPDIR=str(tmp))
    assert [f for f in os.listdir(tmp) if f.startswith("ernie-web-")]
    browser = None
    try:
        browser = open_browser(chrome, driver)
        review = REVIEWS[0]
        rows = predict_in_page(browser, url, review)
        logits, = TextPredictor(models["cls"]).predict(review)
        want = softmax(logits[0])
        # the <script> label is shown as text, and ran nothing
        assert [r[0] for r in rows] == LABELS
        np.testing.assert_allclose([r[1] for r in rows], want, atol=1e-6)
        assert [r[2] for r in rows] == [f"{p:.4f}" for p in want]
        widths = browser.execute_script(
            "return [...document.querySelectorAll('#result .bar')].map(b => b.getBoundingClientRect().width"
            " / b.parentElement.getBoundingClientRect().width)")
        np.testing.assert_allclose(widths, want, atol=0.01)
        assert "ms" in browser.find_element(By.ID, "latency").text
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
        png = tmp_path / "web_demo.png"
        browser.save_screenshot(str(png))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        # an empty text: the page shows the server's message, and the next prediction still works
        browser.find_element(By.ID, "text").clear()
        browser.find_element(By.ID, "predict").click()
        err = browser.find_element(By.ID, "error")
        WebDriverWait(browser, 20).until(lambda b: err.is_displayed())
        assert "empty" in err.text
        assert [r[0] for r in predict_in_page(browser, url, REVIEWS[1])] == LABELS
        assert not browser.find_element(By.ID, "error").is_displayed()
    finally:
        if browser is not None:
            browser.quit()
        proc.terminate()
        assert proc.wait(30) == 0  # SIGTERM: a clean shutdown
        assert not [f for f in os.listdir(tmp) if f.startswith("ernie-web-")]


@contextlib.contextmanager
def app_in_thread(predictor):
    """The app on uvicorn in a thread of this process (on 127.0.0.1, a free port): its URL."""
    import uvicorn
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, max_chars=MAX_CHARS), log_level="warning"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield "http://127.0.0.1:%d/" % sock.getsockname()[1]
    finally:
        server.should_exit = True
        t.join(10)
        sock.close()


def test_ner_and_encoder_pages_in_headless_chromium(models):
    chrome, driver = find_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def run(url, text):
        browser.get(url)
        browser.find_element(By.ID, "text").send_keys(text)
        browser.find_element(By.ID, "predict").click()
        WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "latency").text)
        return browser.find_element(By.ID, "result")

    browser = open_browser(chrome, driver)
    try:
        text = "王五住在 广州<b>x</b>"
        want = WebPredictor.predict(models["ner"], text)
        with app_in_thread(models["ner"]) as url:
            run(url, text)
            assert want["entities"]  # the random model tags some: the test needs them
            marks = browser.execute_script("return [...document.querySelectorAll('#result mark.ent')]"
                                           ".map(m => [m.dataset.type, m.firstChild.textContent])")
            assert marks == [[e["type"], e["text"]] for e in want["entities"]]
            # the text comes back whole, as text: the <b> typed in is not markup
            shown = browser.execute_script("const p = document.querySelector('.ner-text').cloneNode(true);"
                                           "p.querySelectorAll('.ent-type').forEach(e => e.remove());"
                                           "return [p.textContent, p.querySelectorAll('b').length]")
            assert shown == [text, 0]
        with app_in_thread(models["enc_pred"]) as url:
            result = run(url, INDEX[1])
            items = result.find_elements(By.CSS_SELECTOR, "ol.neighbours li .neighbour")
            assert [i.text for i in items][0] == INDEX[1] and len(items) == 3
    finally:
        browser.quit()
