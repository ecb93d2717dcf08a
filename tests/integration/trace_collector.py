#!/usr/bin/python3
"""A small span collector for the tracing integration test
(tests/integration/test_tracing.sh): OTLP/HTTP JSON (POST /v1/traces) and
Zipkin v2 JSON (POST /api/v2/spans).

    trace_collector.py --bind 127.0.0.1:PORT

Prints "listening", then one JSON line per span received, in one shape for
both protocols: format ("otlp" / "zipkin"), trace_id, span_id, parent_id
(None when absent), name, kind, start_us, duration_us, service (the
resource's service.name / localEndpoint.serviceName), attrs (tag -> string
value), status (OTLP's status code, None for Zipkin), and the request's
content-type. A body that is not what the protocol says gets 400 and a
line {"error": ...}. Run with /usr/bin/python3.
"""
import argparse
import http.server
import json
import sys


def otlp_spans(doc):
    out = []
    for rs in doc["resourceSpans"]:
        svc = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
        for ss in rs["scopeSpans"]:
            assert ss["scope"]["name"] == "waypointd"
            for s in ss["spans"]:
                attrs = {}
                for a in s["attributes"]:
                    (k, v), = a["value"].items()
                    assert k == "stringValue", a
                    attrs[a["key"]] = v
                start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                assert isinstance(s["startTimeUnixNano"], str) and end >= start
                out.append(dict(format="otlp", trace_id=s["traceId"], span_id=s["spanId"],
                                parent_id=s.get("parentSpanId"), name=s["name"],
                                kind=s["kind"], start_us=start // 1000,
                                duration_us=(end - start) // 1000,
                                service=svc.get("service.name"), attrs=attrs,
                                status=s["status"].get("code")))
    return out


def zipkin_spans(doc):
    out = []
    assert isinstance(doc, list)
    for s in doc:
        assert all(isinstance(v, str) for v in s["tags"].values())
        out.append(dict(format="zipkin", trace_id=s["traceId"], span_id=s["id"],
                        parent_id=s.get("parentId"), name=s["name"], kind=s["kind"],
                        start_us=s["timestamp"], duration_us=s["duration"],
                        service=s["localEndpoint"]["serviceName"], attrs=s["tags"],
                        status=None))
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        ct = self.headers.get("content-type")
        try:
            doc = json.loads(body)
            spans = {"/v1/traces": otlp_spans, "/api/v2/spans": zipkin_spans}[self.path](doc)
            code = 200 if self.path == "/v1/traces" else 202
        except Exception as e:  # noqa: BLE001 (the test reads the line)
            print(json.dumps({"error": "%s %s: %r" % (self.path, type(e).__name__, e)}),
                  flush=True)
            spans, code = [], 400
        for s in spans:
            s["content_type"] = ct
            print(json.dumps(s), flush=True)
        self.send_response(code)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", required=True)
    a = ap.parse_args()
    host, port = a.bind.rsplit(":", 1)
    srv = http.server.HTTPServer((host, int(port)), Handler)
    print("listening", flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
