#!/usr/bin/env python3
"""Drives a real headless Chromium through the DevTools protocol over a pipe (no network
port, no extra packages) for the dashboard's browser tests.

Reads a plan (JSON) on stdin: {"chromium": "chromium", "size": [1280, 900], "steps": [...]},
each step {"url": optional, "wait": JS expression that must become true, "timeout": s,
"screenshot": path, "dom": path, "eval": JS expression whose value is returned}.
Cookies last across steps (one browser). Prints one JSON object: each step's outcome, and
everything the page complained about: console messages of level warning or error, uncaught
exceptions, log entries (CSP violations, failed loads) and answers of status >= 400.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, size):
        self.profile = tempfile.mkdtemp(prefix="cohort-browser-")
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()

        def pipes():  # the protocol's fds: 3 for commands in, 4 for answers out
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             "--user-data-dir=" + self.profile, "--window-size=%d,%d" % tuple(size), "about:blank"],
            pass_fds=(3, 4, to_browser_read, from_browser_write), preexec_fn=pipes,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.buffer = b""
        self.next_id = 0
        self.session = None
        self.complaints = []
        self.loaded = False

    def send(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            answer = self.read(deadline)
            if answer is None:
                raise TimeoutError("no answer to " + method)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError("%s: %s" % (method, answer["error"]))
                return answer.get("result", {})

    def read(self, deadline):
        """The next message (events are noted on the way); None at the deadline."""
        import select
        while b"\0" not in self.buffer:
            left = deadline - time.time()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser ended")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message = json.loads(raw)
        self.note(message)
        return message

    def note(self, message):
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self.complaints.append("console.%s: %s" % (params["type"], text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.complaints.append("exception: %s" % details.get("exception", {}).get("description", details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            entry = params["entry"]
            self.complaints.append("log %s: %s %s" % (entry["level"], entry.get("text"), entry.get("url", "")))
        elif method == "Network.responseReceived" and params.get("response", {}).get("status", 0) >= 400:
            response = params["response"]
            self.complaints.append("HTTP %d for %s" % (response["status"], response["url"]))
        elif method == "Page.loadEventFired":
            self.loaded = True

    def open(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(domain + ".enable")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError("%s: %s" % (expression, result["exceptionDetails"].get("text")))
        return result.get("result", {}).get("value")

    def pump(self, seconds):
        """Lets events arrive for a while (the page runs on its own meanwhile)."""
        deadline = time.time() + seconds
        while self.read(deadline) is not None:
            pass

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        subprocess.run(["rm", "-rf", self.profile])


def main():
    plan = json.load(sys.stdin)
    browser = Browser(plan.get("chromium", "chromium"), plan.get("size", [1280, 900]))
    outcomes = []
    try:
        browser.open()
        for step in plan["steps"]:
            outcome = {"url": step.get("url")}
            started = time.time()
            if step.get("url"):
                browser.loaded = False
                browser.send("Page.navigate", {"url": step["url"]})
                deadline = time.time() + step.get("timeout", 30)
                while not browser.loaded and time.time() < deadline:
                    browser.pump(0.1)
                outcome["loaded"] = browser.loaded
            if step.get("wait"):
                deadline = time.time() + step.get("timeout", 30)
                met = False
                while time.time() < deadline:
                    if browser.evaluate(step["wait"]) is True:
                        met = True
                        break
                    browser.pump(0.2)
                outcome["met"] = met
            outcome["seconds"] = round(time.time() - started, 3)
            outcome["location"] = browser.evaluate("location.pathname + location.search")
            if step.get("eval"):
                outcome["value"] = browser.evaluate(step["eval"])
            if step.get("dom"):
                with open(step["dom"], "w") as file:
                    file.write(browser.evaluate("document.documentElement.outerHTML"))
            if step.get("screenshot"):
                data = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
                with open(step["screenshot"], "wb") as file:
                    file.write(base64.b64decode(data))
            outcomes.append(outcome)
        browser.pump(0.3)
    except Exception as error:  # the test reports it, with what was seen so far
        outcomes.append({"error": "%s: %s" % (type(error).__name__, error)})
    finally:
        browser.close()
    print(json.dumps({"steps": outcomes, "complaints": browser.complaints}))


if __name__ == "__main__":
    main()
