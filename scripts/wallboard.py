"""scripts/wallboard's browser test (read the comments of scripts/wallboard).

Drives Debian's Chromium, headless, through the DevTools protocol over --remote-debugging-pipe
(the browser reads commands on its fd 3 and writes answers and events on its fd 4, each message
JSON ended by a NUL byte), against a `phonecalls serve` already started, and reports calls through
the switch feed. Python 3 standard library only. Exit status: 0 every step passed, 3 a step
failed, 1 the run itself broke.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

E = os.environ
PORT = int(E["WALLBOARD_PORT"])
WORK = E["WALLBOARD_WORK"]
LOGS = os.path.join(WORK, "logs")
SCREENSHOT = E.get("WALLBOARD_SCREENSHOT", "")
USER_TOKEN = E["WALLBOARD_TOKEN_USER"]
SWITCH_TOKEN = E["WALLBOARD_TOKEN_SWITCH"]
# Well-formed (pct_ and 43 characters) but never issued.
WRONG_TOKEN = "pct_" + "W" * 43
BASE = f"http://127.0.0.1:{PORT}"
WAIT = 10.0
START = time.monotonic()


class Failed(Exception):
    """A step missed what it asserts."""


def redact(text):
    for token in (USER_TOKEN, SWITCH_TOKEN):
        text = text.replace(token, "pct_<redacted>")
    return text


def log(message):
    print(redact(f"wallboard: [{time.monotonic() - START:5.1f} s] {message}"), file=sys.stderr, flush=True)


def utc(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------
# HTTP: the page itself, readiness and the switch feed
# ------------------------------------------------------------------------------------------
def request(method, path, body=None, token=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def wait_ready(limit):
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, _ = request("GET", "/readyz", timeout=1.0)
            if status == 200:
                return
            last = status
        except OSError as e:
            last = type(e).__name__
        time.sleep(0.1)
    raise Failed(f"the service did not become ready within {limit:.0f} s (last: {last}; see serve.log)")


def report(call_id, body):
    status, _, data = request("PUT", f"/switch/v1/phoneCalls/{call_id}", body, SWITCH_TOKEN)
    expected = 201 if body["sequence"] == 1 else 200
    try:
        applied = json.loads(data).get("applied") is True
    except ValueError:
        applied = False
    if status != expected or not applied:
        raise Failed(f"PUT /switch/v1/phoneCalls/{call_id} (sequence {body['sequence']}) answered {status}"
                     f" {data[:300]!r}, expected {expected} with applied true")


def report_batch(reports):
    status, _, data = request("POST", "/switch/v1/phoneCalls", {"reports": reports}, SWITCH_TOKEN)
    if status != 200:
        raise Failed(f"POST /switch/v1/phoneCalls answered {status} {data[:300]!r}")
    results = json.loads(data)["results"]
    refused = [r for r in results if r.get("status") != 201]
    if refused:
        raise Failed(f"the switch feed refused reports of the batch: {refused}")


# ------------------------------------------------------------------------------------------
# Chromium over the DevTools pipe
# ------------------------------------------------------------------------------------------
def chromium_binary():
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("Chromium is not installed (apt-get install chromium)")


def high_fd(fd):
    """The same pipe end on a descriptor above 9, so that placing the child's ends on 3 and 4
    cannot overwrite one with the other."""
    import fcntl
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    def __init__(self):
        self.profile = os.path.join(WORK, "chromium-profile")
        os.makedirs(self.profile, exist_ok=True)
        to_browser_r, self.to_browser = (high_fd(fd) for fd in os.pipe())
        self.from_browser, from_browser_w = (high_fd(fd) for fd in os.pipe())
        args = [
            chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--no-first-run", "--no-default-browser-check",
            "--disable-features=Translate,MediaRouter,OptimizationHints", "--metrics-recording-only",
            "--mute-audio", "--hide-scrollbars", "--password-store=basic", "--window-size=1280,800",
            f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank",
        ]
        log_path = os.path.join(LOGS, "chromium.log")
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            (os.POSIX_SPAWN_DUP2, to_browser_r, 3),
            (os.POSIX_SPAWN_DUP2, from_browser_w, 4),
        ]
        # A session (and process group) of its own: stopping the group stops its helpers too.
        self.pid = os.posix_spawn(args[0], args, dict(os.environ), file_actions=actions, setsid=True)
        with open(os.path.join(WORK, "pids"), "a") as pids:
            pids.write(f"{self.pid}\n")
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.next_id = 0
        self.lock = threading.Lock()
        self.answers = {}
        self.answered = threading.Condition()
        self.closed = False
        self.console = open(os.path.join(LOGS, "console.log"), "a")
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self.from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if "id" in message:
                    with self.answered:
                        self.answers[message["id"]] = message
                        self.answered.notify_all()
                else:
                    self.event(message)
        with self.answered:
            self.closed = True
            self.answered.notify_all()

    def event(self, message):
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.write(redact(f"console.{params.get('type')}: {text}\n"))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.write(redact(f"uncaught: {text}\n"))
        elif method == "Inspector.targetCrashed":
            self.console.write("the page crashed\n")
        self.console.flush()

    def send(self, method, params=None, session=None, timeout=WAIT):
        with self.lock:
            self.next_id += 1
            ident = self.next_id
            message = {"id": ident, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            data = json.dumps(message).encode() + b"\0"
            while data:
                written = os.write(self.to_browser, data)
                data = data[written:]
        deadline = time.monotonic() + timeout
        with self.answered:
            while ident not in self.answers:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise RuntimeError(f"Chromium {'closed its pipe' if self.closed else 'did not answer'}"
                                       f" to {method} (see chromium.log)")
                self.answered.wait(left)
            answer = self.answers.pop(ident)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def stop(self):
        try:
            self.send("Browser.close", timeout=3.0)
        except (RuntimeError, OSError):
            pass
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.console.close()


class Page:
    """The browser's one tab."""

    def __init__(self, browser):
        self.browser = browser
        targets = browser.send("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        target = pages[0]["targetId"] if pages else browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Inspector.enable"):
            self.send(method)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method, params=None, timeout=WAIT):
        return self.browser.send(method, params, self.session, timeout)

    def open(self, url):
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise Failed(f"the page did not load: {result['errorText']}")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating in the page failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    # What the page shows, as the test reads it.
    PROBE = """(() => {
      const q = (s) => document.querySelector(s);
      const text = (e) => (e ? e.textContent.replace(/\\s+/g, ' ').trim() : null);
      return {
        href: location.href,
        state: q('#state') && q('#state').dataset.state,
        stateText: text(q('#state')),
        message: text(q('#message')),
        count: q('#count') ? Number(q('#count').dataset.count) : null,
        calls: [...document.querySelectorAll('[data-call-id]')].map((e) => ({
          id: e.dataset.callId,
          extension: e.closest('[data-extension]') && e.closest('[data-extension]').dataset.extension,
          status: text(e.querySelector('.status')),
          duration: text(e.querySelector('.dur')),
          text: text(e),
        })),
      };
    })()"""

    def probe(self):
        return self.evaluate(self.PROBE) or {}

    def wait_until(self, what, predicate, limit=WAIT):
        """Polls the page until predicate(probe) holds; a Failed naming `what` past the limit."""
        deadline = time.monotonic() + limit
        shown = {}
        while True:
            shown = self.probe()
            if predicate(shown):
                return shown
            if time.monotonic() >= deadline:
                brief = {k: shown.get(k) for k in ("state", "stateText", "message", "count")}
                brief["calls"] = [{k: c[k] for k in ("id", "extension", "status", "text")} for c in shown.get("calls", [])]
                raise Failed(f"{what}: not within {limit:.0f} s; the page shows {json.dumps(brief)}")
            time.sleep(0.1)


def find(shown, call_id):
    return next((c for c in shown.get("calls", []) if c["id"] == call_id), None)


# ------------------------------------------------------------------------------------------
# The steps
# ------------------------------------------------------------------------------------------
def view(extension, source, destination, flow, status, **more):
    return {"id": "00", "extension": extension, "source": [source], "destination": [destination],
            "flow": flow, "status": status, **more}


def extra_calls(now):
    """Calls for the screenshot: several extensions and states."""
    ago = lambda seconds: utc(now - timedelta(seconds=seconds))  # noqa: E731
    calls = [
        {"extension": "0003*211", "published": ago(262), "answered": ago(251),
         "phoneCallView": [view("0003*211", "0003*211", "+14155550142", 4, 5, answered=ago(251),
                                recording=ago(251), callerId="Alice <0003*211>")]},
        {"extension": "0003*220", "published": ago(21),
         "phoneCallView": [view("0003*220", "0003*220", "0003*210", 2, 4, callerId="Bob <0003*220>"),
                           dict(view("0003*210", "0003*220", "0003*210", 2, 3, ringing=ago(20)), id="01")]},
        {"extension": "0003*210", "published": ago(745), "answered": ago(731),
         "phoneCallView": [view("0003*210", "+33142685300", "0003*210", 8, 5, answered=ago(731),
                                onHold=ago(40), holder=1, callerId="Paris office <+33142685300>")]},
        {"extension": "0003*211", "published": ago(118), "answered": ago(95),
         "phoneCallView": [view("0003*211", "+442079460877", "0003*211", 8, 5, answered=ago(95),
                                parked=ago(30), parkedPos=2, parkedBy="0003*211", callerId="+442079460877")]},
        {"extension": "0003*220", "published": ago(3790), "answered": ago(3781),
         "phoneCallView": [view("0003*220", "0003*220", "0003*211", 2, 5, answered=ago(3781)),
                           dict(view("0003*211", "0003*220", "0003*211", 2, 5, answered=ago(3781)), id="01")]},
    ]
    for n, call in enumerate(calls):
        call.update(id=str(uuid.uuid4()), sequence=1, nonce=f"wallboard-extra-{n}")
    return calls


def run(page):
    timings = []

    def step(name, began):
        timings.append((name, time.monotonic() - began))
        log(f"ok  {name} ({timings[-1][1]:.2f} s)")

    # 1. The page, then live with no call.
    began = time.monotonic()
    status, content_type, body = request("GET", "/wallboard/")
    if status != 200 or not content_type.startswith("text/html") or b"EventSource" not in body:
        raise Failed(f"GET /wallboard/ answered {status} {content_type!r}, not the wallboard page")
    page.open(f"{BASE}/wallboard/#token={USER_TOKEN}")
    shown = page.wait_until("the page live (snapshot received) with 0 calls",
                            lambda s: s.get("state") == "live" and s.get("count") == 0 and not s.get("calls"))
    if USER_TOKEN in shown["href"]:
        raise Failed("the token is still in the page's address after it was read")
    step("1. page loaded, live, 0 calls", began)

    # 2. A new call, ringing.
    began = time.monotonic()
    call_id = str(uuid.uuid4())
    published = datetime.now(timezone.utc) - timedelta(seconds=2)
    caller = "+442079460123"
    call = {"sequence": 1, "extension": "0003*210", "published": utc(published), "nonce": "wallboard-test",
            "phoneCallView": [view("0003*210", caller, "0003*210", 8, 3, ringing=utc(published),
                                   callerId=f"Test caller <{caller}>")]}
    report(call_id, call)
    page.wait_until(
        "the new call shown ringing, with its number, in the group of 0003*210",
        lambda s: (c := find(s, call_id)) is not None and c["extension"] == "0003*210"
        and c["status"] == "ringing" and caller in c["text"] and s.get("count") == 1)
    step("2. call reported ringing (PUT sequence 1) shown", began)

    # 3. Answered: the status changes, the duration ticks.
    began = time.monotonic()
    answered = datetime.now(timezone.utc)
    call.update(sequence=2, answered=utc(answered))
    call["phoneCallView"] = [view("0003*210", caller, "0003*210", 8, 5, answered=utc(answered),
                                  callerId=f"Test caller <{caller}>")]
    report(call_id, call)
    shown = page.wait_until("the call's status turned to 'on call'",
                            lambda s: (c := find(s, call_id)) is not None and c["status"] == "on call")
    first = find(shown, call_id)["duration"]
    page.wait_until(f"the call's duration ticking (it showed {first!r})",
                    lambda s: (c := find(s, call_id)) is not None and c["duration"] not in (None, "", first), 3.0)
    step("3. call answered (PUT sequence 2): status and ticking duration", began)

    # 4. The screenshot, with a few more calls.
    extra = 0
    if SCREENSHOT:
        began = time.monotonic()
        calls = extra_calls(datetime.now(timezone.utc))
        report_batch(calls)
        extra = len(calls)
        page.wait_until(f"{extra} more calls shown on three extensions",
                        lambda s: s.get("count") == 1 + extra and len(s.get("calls", [])) == 1 + extra
                        and {c["extension"] for c in s["calls"]} == {"0003*210", "0003*211", "0003*220"})
        time.sleep(1.1)  # durations at a whole second past the reports
        # The viewport's width, down to a little below the last group (at most the viewport).
        bottom = page.evaluate("Math.ceil(document.querySelector('#board').getBoundingClientRect().bottom)")
        clip = {"x": 0, "y": 0, "width": 1280, "height": max(400, min(800, bottom + 8)), "scale": 1}
        png = base64.b64decode(page.send("Page.captureScreenshot", {"format": "png", "clip": clip})["data"])
        os.makedirs(os.path.dirname(SCREENSHOT) or ".", exist_ok=True)
        with open(SCREENSHOT, "wb") as out:
            out.write(png)
        step(f"4. {extra} more calls (POST batch), screenshot {SCREENSHOT} ({len(png)} bytes)", began)

    # 5. Ended: the call leaves the board.
    began = time.monotonic()
    call.update(sequence=3, ended=utc(datetime.now(timezone.utc)))
    report(call_id, call)
    page.wait_until("the ended call removed from the page",
                    lambda s: find(s, call_id) is None and s.get("count") == extra)
    step("5. call ended (PUT sequence 3 with ended) removed", began)

    # 6. A wrong token: an error state, with 401.
    began = time.monotonic()
    page.open("about:blank")
    page.open(f"{BASE}/wallboard/#token={WRONG_TOKEN}")
    page.wait_until("the page in its error state with 401 for an unknown token",
                    lambda s: s.get("state") == "error" and "401" in f"{s.get('stateText')} {s.get('message')}"
                    and not s.get("calls"))
    step("6. unknown token: error state with 401", began)

    # 7. A token revoked while its page is live: the stream ends, the page shows 401.
    began = time.monotonic()
    page.open("about:blank")
    page.open(f"{BASE}/wallboard/#token={USER_TOKEN}")
    page.wait_until(f"the page live again with Alice's {extra} calls",
                    lambda s: s.get("state") == "live" and s.get("count") == extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLBOARD_")}
    env["DATABASE_URL"] = E["WALLBOARD_DATABASE_URL"]
    done = subprocess.run([E["WALLBOARD_BIN"], "token", "revoke", "--token", "-"], input=USER_TOKEN + "\n",
                          cwd=os.path.join(WORK, "run"), env=env, capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or '"revoked":true' not in done.stdout:
        raise RuntimeError(f"phonecalls token revoke failed: {done.stdout} {done.stderr}")
    page.wait_until("the live page in its error state with 401 once its token was revoked",
                    lambda s: s.get("state") == "error" and "401" in f"{s.get('stateText')} {s.get('message')}"
                    and not s.get("calls"))
    step("7. token revoked while live: error state with 401", began)
    return timings


def check_logs():
    """No token in any log of the run (the service's, Chromium's, the page's console)."""
    began = time.monotonic()
    for name in sorted(os.listdir(LOGS)):
        with open(os.path.join(LOGS, name), "rb") as f:
            data = f.read()
        for label, token in (("Alice's", USER_TOKEN), ("the switch's", SWITCH_TOKEN), ("the wrong", WRONG_TOKEN)):
            if token.encode() in data:
                raise Failed(f"{label} token appears in {name}")
    log(f"ok  8. no token in any log ({time.monotonic() - began:.2f} s)")


def main():
    try:
        wait_ready(30.0)
        log("service ready; starting Chromium")
        browser = Browser()
        try:
            page = Page(browser)
            began = time.monotonic()
            run(page)
            log(f"all steps passed in {time.monotonic() - began:.1f} s (browser included: "
                f"{time.monotonic() - START:.1f} s since the service started)")
        finally:
            browser.stop()
        check_logs()
        return 0
    except Failed as e:
        log(f"FAILED {e}")
        return 3
    except Exception as e:  # the run itself broke
        log(f"the run broke: {type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
