"""generate-event (every kind accepted by a real handler), schedules fired on
time and on demand (`sluice trigger schedule`), and broken schedules refused."""
import json
import subprocess
import time

import pytest

FUNCTIONS = """
  api-rest: {runtime: python3.11, code: ev/, handler: handlers.api_rest}
  api-http: {runtime: python3.11, code: ev/, handler: handlers.api_http}
  token-auth: {runtime: python3.11, code: ev/, handler: handlers.token_authorizer}
  request-auth: {runtime: python3.11, code: ev/, handler: handlers.request_authorizer}
  sqs: {runtime: python3.11, code: ev/, handler: handlers.sqs}
  sns: {runtime: python3.11, code: ev/, handler: handlers.sns}
  s3: {runtime: python3.11, code: ev/, handler: handlers.s3}
  dynamodb: {runtime: python3.11, code: ev/, handler: handlers.dynamodb}
  scheduled: {runtime: python3.11, code: ev/, handler: handlers.scheduled}
  logs: {runtime: python3.11, code: ev/, handler: handlers.logs}
"""


def generate(ws, *args):
    p = ws.run("generate-event", *args)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def sets(**kw):
    out = []
    for k, v in kw.items():
        out += ["--set", f"{k.replace('__', '.')}={v}"]
    return out


def test_every_generated_event_is_accepted_by_a_handler(ws):
    ws.copy_function("events-python", "ev")
    ws.write_stack("name: events\nregion: eu-west-3\naccount_id: '210987654321'\nfunctions:" + FUNCTIONS)
    s = ws.serve(["--no-schedules"])

    def call(function, event):
        r = s.invoke(function, event)
        assert "FunctionError" not in r, r["Body"]
        return r["Json"]

    # REST proxy event (payload 1.0) with --set applied
    ev = generate(ws, "apigateway", "aws-proxy", *sets(method="post", path="/movies/12", resource="/movies/{id}",
                                                       body='{"title": "Heat"}', stage="sandbox", header__X_Test="yes",
                                                       query__page="2"))
    out = json.loads(call("api-rest", ev)["body"])
    assert out == {"method": "POST", "path": "/movies/12", "resource": "/movies/{id}", "stage": "sandbox",
                   "sourceIp": "198.51.100.7", "query": {"page": "2"}, "params": {"id": "12"}, "header": None,
                   "body": '{"title": "Heat"}'}
    assert ev["requestContext"]["accountId"] == "210987654321"  # from the stack file
    assert ev["requestContext"]["domainName"].endswith(".execute-api.eu-west-3.amazonaws.com")
    assert ev["headers"]["X-Forwarded-Proto"] == "https" and ev["headers"]["X_Test"] == "yes"
    # header names are taken as written
    ev = generate(ws, "apigateway", "aws-proxy", "--set", "header.X-Test=yes")
    assert json.loads(call("api-rest", ev)["body"])["header"] == "yes"
    assert ev["resource"] == "/{proxy+}" and ev["pathParameters"] == {"proxy": "hello"}

    # HTTP API payload 2.0
    ev = generate(ws, "apigateway", "http-api", *sets(method="PUT", path="/items/7", route="/items/{id}", body="x=1"),
                  "--set", "header.X-Test=2", "--set", "query.q=a b")
    out = json.loads(call("api-http", ev)["body"])
    assert out == {"version": "2.0", "routeKey": "PUT /items/{id}", "method": "PUT", "path": "/items/7",
                   "rawQueryString": "q=a%20b", "header": "2", "body": "x=1"}
    assert ev["pathParameters"] == {"id": "7"} and ev["requestContext"]["stage"] == "$default"

    # Authorizers
    ev = generate(ws, "apigateway", "authorizer-token", *sets(token="Bearer allow", path="/movies", stage="prod"))
    out = call("token-auth", ev)
    assert out["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert out["policyDocument"]["Statement"][0]["Resource"].startswith("arn:aws:execute-api:eu-west-3:210987654321:")
    assert ev["methodArn"].endswith("/prod/GET/movies")
    ev = generate(ws, "apigateway", "authorizer-request", "--set", "header.X-User=ann", "--set", "query.a=1",
                  "--set", "path=/a/b")
    out = call("request-auth", ev)
    assert out["principalId"] == "ann" and out["query"] == {"a": "1"} and out["path"] == "/a/b"

    # SQS, SNS, S3, DynamoDB, EventBridge, CloudWatch Logs
    out = call("sqs", generate(ws, "sqs", "receive-message", *sets(body="hello", queue="orders", count=3)))
    assert out["bodies"] == ["hello"] * 3 and out["queues"] == ["arn:aws:sqs:eu-west-3:210987654321:orders"]
    assert len(set(out["ids"])) == 3  # ids are random
    ev = generate(ws, "sqs", "receive-message", *sets(queue="jobs.fifo", group_id="g7"))
    assert ev["Records"][0]["attributes"]["MessageGroupId"] == "g7"

    out = call("sns", generate(ws, "sns", "notification", *sets(message="ping", topic="alerts", subject="Hi")))
    assert out == {"message": "ping", "subject": "Hi", "topic": "arn:aws:sns:eu-west-3:210987654321:alerts",
                   "type": "Notification"}
    assert call("sns", generate(ws, "sns", "notification"))["subject"] is None

    out = call("s3", generate(ws, "s3", "put", *sets(bucket="photos", key="2024/my cat.jpg", size=4096)))
    assert out == {"event": "ObjectCreated:Put", "bucket": "photos", "key": "2024/my cat.jpg", "size": 4096}

    out = call("dynamodb", generate(ws, "dynamodb", "update", *sets(table="movies", keys='{"id": "42"}',
                                                                     new_image='{"title": "Heat", "year": 1995}')))
    assert out["event"] == "MODIFY" and out["table"] == "movies" and out["keys"] == {"id": {"S": "42"}}
    assert out["new"] == {"title": {"S": "Heat"}, "year": {"N": "1995"}, "id": {"S": "42"}}

    for source in ("eventbridge", "cloudwatch"):
        out = call("scheduled", generate(ws, source, "scheduled-event",
                                         *sets(rule="nightly", time="2030-01-02T03:04:05Z", detail='{"a": 1}')))
        assert out == {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2030-01-02T03:04:05Z",
                       "rule": "arn:aws:events:eu-west-3:210987654321:rule/nightly", "detail": {"a": 1},
                       "region": "eu-west-3"}

    out = call("logs", generate(ws, "cloudwatch", "logs", *sets(group="/aws/lambda/api", stream="s1"),
                                "--set", "message=first", "--set", "message=second"))
    assert out == {"group": "/aws/lambda/api", "stream": "s1", "messages": ["first", "second"],
                   "owner": "210987654321"}


def test_generate_event_refuses_unknown_sources_kinds_and_keys(ws):
    p = ws.run("generate-event", "sqs", "receive-mesage")
    assert p.returncode == 2
    assert b"unknown kind 'receive-mesage' for source sqs; did you mean 'receive-message'?" in p.stderr
    p = ws.run("generate-event", "kinesis", "record")
    assert p.returncode == 2 and b"unknown event source 'kinesis'" in p.stderr and b"apigateway" in p.stderr
    p = ws.run("generate-event", "s3", "put", "--set", "bucket_name=x")
    assert p.returncode == 2 and b"unknown key 'bucket_name' for s3 put; did you mean 'bucket'?" in p.stderr
    assert b"Keys: bucket, key, size, etag, region, account" in p.stderr
    p = ws.run("generate-event", "sqs", "receive-message", "--set", "count=many")
    assert p.returncode == 2 and b"--set count=\"many\"" in p.stderr and b"whole number" in p.stderr
    p = ws.run("generate-event", "sqs", "receive-message", "--set", "count")
    assert p.returncode == 2 and b"--set expects key=value" in p.stderr
    p = ws.run("generate-event", "apigateway", "aws-proxy", "--set", "path=/a", "--set", "resource=/b")
    assert p.returncode == 2 and b"does not match the resource" in p.stderr

    p = ws.run("generate-event", "--help")
    assert p.returncode == 0
    for word in (b"apigateway", b"aws-proxy", b"http-api", b"authorizer-token", b"authorizer-request",
                 b"receive-message", b"notification", b"put", b"update", b"scheduled-event", b"logs"):
        assert word in p.stdout
    p = ws.run("generate-event", "apigateway", "--help")
    assert p.returncode == 0 and b"header.NAME" in p.stdout and b"query.NAME" in p.stdout


SCHEDULE_STACK = """
name: timers
functions:
  record:
    runtime: python3.11
    code: ev/
    handler: handlers.record
    environment: {{RECORD_FILE: "{record}"}}
schedules:
  tick: {{function: record, expression: "rate(1 minute)"}}
  nine: {{function: record, expression: "cron(0 9 * * ? *)"}}
  refresh: {{function: record, expression: "rate(1 day)", input: {{refresh: true}}}}
  off: {{function: record, expression: "rate(5 minutes)", enabled: false}}
"""


def recorded(path, count, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {count} recorded events, got: {path.read_text() if path.exists() else None}")


def test_schedules_fire_on_time_with_a_faster_clock(ws):
    ws.copy_function("events-python", "ev")
    record = ws.path / "record.jsonl"
    ws.write_stack(SCHEDULE_STACK.format(record=record))
    # A clock 2 s before 09:00 UTC running 30 times faster: `nine` is due at once,
    # `tick` (rate(1 minute)) two real seconds after the start.
    start = time.time()
    s = ws.serve(["--schedule-clock", "2030-01-01T08:59:58Z", "--schedule-speed", "30"])
    events = recorded(record, 2)
    elapsed = time.time() - start
    assert elapsed < 10
    by_time = {e["time"]: e for e in events}
    nine = by_time["2030-01-01T09:00:00Z"]
    assert nine["detail-type"] == "Scheduled Event" and nine["source"] == "aws.events"
    assert nine["version"] == "0" and nine["account"] == "123456789012" and nine["region"] == "us-east-1"
    assert nine["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/timers-nine"] and nine["detail"] == {}
    assert "2030-01-01T09:00:58Z" in by_time  # tick: one minute of schedule time after the start
    s.wait_for_log("[schedule nine] fired at 2030-01-01T09:00:00Z -> record (request ")
    s.wait_for_log("[schedule tick] fired at")
    assert "[schedule off]" not in s.stdout() and "[schedule refresh]" not in s.stdout()


def test_trigger_schedule_against_serve_and_in_process(ws):
    ws.copy_function("events-python", "ev")
    record = ws.path / "record.jsonl"
    ws.write_stack(SCHEDULE_STACK.format(record=record))
    s = ws.serve(["--schedule-speed", "0"])  # a stopped clock: nothing fires by itself

    p = ws.run("trigger", "schedule", "refresh", "--endpoints-file", str(s.endpoints_file))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"recorded": {"refresh": True}}  # the constant input
    p = ws.run("trigger", "schedule", "off", "--endpoint", s.lambda_url, "--json")
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert answer["schedule"] == "off" and answer["function"] == "record" and answer["functionError"] is None
    assert answer["event"]["detail-type"] == "Scheduled Event"
    assert json.loads(answer["payload"])["recorded"]["id"] == answer["event"]["id"]
    s.wait_for_log("[schedule off] triggered at")

    p = ws.run("trigger", "schedule", "nope", "--endpoints-file", str(s.endpoints_file))
    assert p.returncode == 2 and b"no schedule named \"nope\"" in p.stderr and b"schedules: nine, off" in p.stderr

    # The admin route itself
    import urllib.error
    import urllib.request
    req = urllib.request.Request(s.lambda_url + "/sluice/schedules/tick/trigger", method="POST", data=b"")
    body = json.loads(urllib.request.urlopen(req, timeout=30).read())
    assert body["event"]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/timers-tick"]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(s.lambda_url + "/sluice/schedules/tick/trigger"), timeout=30)
    assert e.value.code == 405
    assert len(recorded(record, 3)) == 3

    # Without --endpoint: the serve running this stack fires it (it keeps its address in
    # .sluice/serve.json); --in-process runs it here even so.
    marker = ws.path / ".sluice" / "serve.json"
    assert json.loads(marker.read_text())["lambda"] == s.lambda_url
    p = ws.run("trigger", "schedule", "refresh")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"recorded": {"refresh": True}}
    assert b"through the sluice serve running this stack" in p.stderr and b"START RequestId" not in p.stderr
    s.wait_for_log("[schedule refresh] triggered at")
    p = ws.run("trigger", "schedule", "refresh", "--in-process")
    assert p.returncode == 0, p.stderr
    assert b"START RequestId:" in p.stderr and b"through the sluice serve" not in p.stderr
    s.stop()
    assert not marker.exists()
    # A marker left by a serve that is gone (killed with SIGKILL) is not followed.
    gone = subprocess.Popen(["true"])
    gone.wait()
    marker.write_text(json.dumps({"pid": gone.pid, "stack": str(ws.path / "sluice.yaml"), "lambda": s.lambda_url}))
    p = ws.run("trigger", "schedule", "refresh")
    assert p.returncode == 0, p.stderr
    assert b"START RequestId:" in p.stderr and b"through the sluice serve" not in p.stderr

    # In process, as `sluice invoke` does: the payload on stdout, the log on stderr.
    p = ws.run("trigger", "schedule", "nine")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["recorded"]
    assert got["detail-type"] == "Scheduled Event" and got["resources"][0].endswith(":rule/timers-nine")
    assert b"START RequestId:" in p.stderr and b"REPORT RequestId:" in p.stderr
    p = ws.run("trigger", "schedule", "tik")
    assert p.returncode == 2 and b"did you mean \"tick\"?" in p.stderr
    p = ws.run("trigger", "schedule", "tick", "--endpoint", "http://127.0.0.1:1")
    assert p.returncode == 2 and b"no sluice serve is answering" in p.stderr


def test_serve_without_schedules(ws):
    ws.copy_function("events-python", "ev")
    record = ws.path / "record.jsonl"
    ws.write_stack(SCHEDULE_STACK.format(record=record))
    s = ws.serve(["--no-schedules", "--schedule-clock", "2030-01-01T08:59:59Z"])
    time.sleep(2)
    assert not record.exists()
    p = ws.run("trigger", "schedule", "tick", "--endpoints-file", str(s.endpoints_file))
    assert p.returncode == 2 and b"schedules are disabled" in p.stderr


def test_validate_refuses_broken_schedules(ws):
    ws.copy_function("events-python", "ev")
    ws.write_stack("""
name: broken
functions:
  record: {runtime: python3.11, code: ev/, handler: handlers.record, aliases: {live: $LATEST}}
schedules:
  a: {function: record, expression: "rate(1 minutes)"}
  b: {function: record, expression: "rate(5 minute)"}
  c: {function: record, expression: "cron(0 12 * * *)"}
  d: {function: record, expression: "cron(0 12 * * MON *)"}
  e: {function: record, expression: "cron(61 12 ? * MON *)"}
  f: {function: recrod, expression: "rate(1 hour)"}
  g: {function: "record:nope", expression: "rate(1 hour)"}
  h: {function: record, expresion: "rate(1 hour)"}
  i: {function: record, expression: "every 5 minutes"}
  j: {function: record, expression: "cron(0 12 ? * MON#6 *)"}
  k: {function: record, expression: "rate(1 day)", input: "{not json"}
  ok: {function: "record:live", expression: "cron(0/15 8-17 ? * MON-FRI *)", input: {x: 1}}
""")
    p = ws.run("validate")
    assert p.returncode == 1
    err = p.stderr.decode()
    expected = [
        "schedules.a.expression: rate expression rate(1 minutes): a value of 1 takes the singular unit",
        "schedules.b.expression: rate expression rate(5 minute): a value above 1 takes the plural unit",
        "schedules.c.expression: cron expression cron(0 12 * * *) has 5 fields; EventBridge takes six",
        "schedules.d.expression: cron expression cron(0 12 * * MON *): one of Day-of-month and Day-of-week must be '?'",
        "schedules.e.expression: cron expression cron(61 12 ? * MON *): Minutes field: 61 is out of range; "
        "allowed: 0-59",
        "schedules.f.function: unknown function \"recrod\"; did you mean 'record'?",
        "schedules.g.function: qualifier \"nope\" is not $LATEST, a version number or an alias of 'record'",
        "schedules.h.expresion: unknown key 'expresion'; did you mean 'expression'?",
        "schedules.h: missing required key 'expression'",
        "schedules.i.expression: expected rate(value unit)",
        "schedules.j.expression: cron expression cron(0 12 ? * MON#6 *): Day-of-week field: in 'MON#6' the number "
        "after # must be 1 to 5",
        "schedules.k.input: input must be JSON",
    ]
    for line in expected:
        assert line in err, f"{line!r} not in:\n{err}"
    assert "schedules.ok" not in err
    assert "12 errors" in err


def test_editing_schedules_while_serving(ws):
    ws.copy_function("events-python", "ev")
    record = ws.path / "record.jsonl"
    ws.write_stack(SCHEDULE_STACK.format(record=record))
    s = ws.serve(["--schedule-speed", "0"])
    assert "schedule tick: rate(1 minute) -> record, next at" in s.stderr()
    assert "schedule off: rate(5 minutes) -> record, disabled" in s.stderr()
    p = ws.run("trigger", "schedule", "later", "--endpoints-file", str(s.endpoints_file))
    assert p.returncode == 2 and b"no schedule named \"later\"" in p.stderr
    ws.write_stack(SCHEDULE_STACK.format(record=record) +
                   '  later: {function: record, expression: "cron(0 12 * * ? *)", input: [1, 2]}\n')
    s.wait_for_stderr("reloaded sluice.yaml", timeout=15)
    p = ws.run("trigger", "schedule", "later", "--endpoints-file", str(s.endpoints_file))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"recorded": [1, 2]}
    # A broken expression keeps the running schedules.
    ws.write_stack(SCHEDULE_STACK.format(record=record) + '  later: {function: record, expression: "rate(1 minutes)"}\n')
    s.wait_for_stderr("a value of 1 takes the singular unit", timeout=15)
    p = ws.run("trigger", "schedule", "later", "--endpoints-file", str(s.endpoints_file))
    assert p.returncode == 0 and json.loads(p.stdout) == {"recorded": [1, 2]}
