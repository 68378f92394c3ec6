"""Destinations of asynchronous invocations (`async: {on_success, on_failure}`): the
invocation record a function of the stack gets, and the one moto_server's SQS, SNS,
EventBridge and S3 get, compared with the records recorded from AWS."""
import json
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import NODE_MODULES, ROOT, wait_until

sluice = pytest.importorskip("sluice")

VECTORS = ROOT / "tests" / "vectors" / "aws-recorded"
ACCOUNT = "123456789012"
REGION = "us-east-1"

STACK = """
name: dest
defaults: {runtime: python3.11, timeout: 5}
functions:
  ok: {code: fn/, handler: handlers.echo, async: {on_success: audit, on_failure: audit}}
  fail: {code: fn/, handler: handlers.fail, async: {max_retry_attempts: 2, on_failure: audit}}
  young: {code: fn/, handler: handlers.fail, async: {max_event_age: 60, on_failure: audit}}
  audit: {code: fn/, handler: handlers.print_event, aliases: {live: $LATEST}}
  closed:
    code: fn/
    handler: handlers.echo
    concurrency: 0
    async: {on_failure: arn:aws:sqs:us-east-1:123456789012:failed-events,
            dead_letter: arn:aws:sqs:us-east-1:123456789012:dead-letters}
  remote-ok:
    code: fn/
    handler: handlers.echo
    async: {on_success: arn:aws:events:us-east-1:123456789012:event-bus/results,
            on_failure: arn:aws:sns:us-east-1:123456789012:failures}
  remote-fail:
    code: fn/
    handler: handlers.fail
    async: {max_retry_attempts: 0, on_failure: arn:aws:sns:us-east-1:123456789012:failures}
  to-bucket:
    code: fn/
    handler: handlers.fail
    async: {max_retry_attempts: 0, on_failure: "arn:aws:s3:::failed-records"}
  dead:
    code: fn/
    handler: handlers.fail
    async: {max_retry_attempts: 1, dead_letter: arn:aws:sqs:us-east-1:123456789012:dead-letters}
  lost:
    code: fn/
    handler: handlers.fail
    async: {max_retry_attempts: 0, on_failure: arn:aws:sqs:us-east-1:123456789012:no-such-queue}
"""


def read_with_javascript_sdk(endpoint, command, params):
    assert (NODE_MODULES / "@aws-sdk" / "client-lambda").is_dir(), "run scripts/setup.sh (npm ci in tests/node)"
    p = subprocess.run(["node", str(NODE_MODULES.parent / "read_sdk.js"), endpoint, command, json.dumps(params)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture
def project(ws):
    ws.copy_function("python-basic", "fn")
    ws.write_stack(STACK)
    return ws


def serve(project, **kw):
    return sluice.serve(project.path / "sluice.yaml", async_retry_delays=[0.05, 0.05], **kw)


def printed_events(app, function):
    return [json.loads(line.split("EVENT ", 1)[1]) for line in app.logs(function).splitlines() if "EVENT " in line]


def test_a_function_of_the_stack_gets_the_record_on_success_and_after_the_retries(project):
    with serve(project) as app:
        rid = app.invoke_async("ok", {"n": 1})
        [d] = wait_until(lambda: [x for x in app.destinations("ok") if x.state == "delivered"])
        assert (d.kind, d.condition, d.destination) == ("on_success", "Success", "audit")
        rec = d.record
        # The keys and their order as AWS sends them (recorded SQS bodies).
        assert list(rec) == ["version", "timestamp", "requestContext", "requestPayload", "responseContext",
                             "responsePayload"]
        assert rec["version"] == "1.0"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["timestamp"])
        assert rec["requestContext"] == {"requestId": rid,
                                         "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ok:$LATEST",
                                         "condition": "Success", "approximateInvokeCount": 1}
        assert rec["requestPayload"] == {"n": 1}
        assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}  # no functionError
        assert rec["responsePayload"]["event"] == {"n": 1}
        # audit ran asynchronously with exactly that record as its event.
        [seen] = wait_until(lambda: printed_events(app, "audit"))
        assert seen == rec
        audit = [r for r in app.records("audit")]
        assert [(r.invocation_type, r.source, r.status) for r in audit] == [
            ("Event", "on_success destination of ok", "success")]
        assert d.detail == "request id " + audit[0].request_id

        rid = app.invoke_async("fail", {"why": "bad input"})
        [d] = wait_until(lambda: [x for x in app.destinations("fail") if x.state == "delivered"])
        attempts = app.records("fail")
        assert [(r.request_id, r.status) for r in attempts] == [(rid, "function_error")] * 3
        rec = d.record
        # The record is made once the last attempt has ended, not when the event was accepted.
        stamped = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
        last = attempts[-1]
        assert stamped >= last.started + last.duration_ms / 1000 - 0.002, (rec["timestamp"], last)
        assert (d.kind, rec["requestContext"]["condition"], rec["requestContext"]["approximateInvokeCount"]) == (
            "on_failure", "RetriesExhausted", 3)
        assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        assert rec["responsePayload"]["errorType"] == "ValueError"
        assert rec["responsePayload"]["errorMessage"] == "something went wrong: bad input"
        assert rec["responsePayload"]["requestId"] == rid  # the same id on every attempt
        assert wait_until(lambda: [e for e in printed_events(app, "audit") if e == rec])
        # generate-event's record has the delivered one's shape.
        gen = json.loads(project.run("generate-event", "lambda", "destination", "--set", "condition=RetriesExhausted",
                                     "--set", "function=fail").stdout)
        assert [list(gen), list(gen["requestContext"]), list(gen["responseContext"]), list(gen["responsePayload"])] == [
            list(rec), list(rec["requestContext"]), list(rec["responseContext"]), list(rec["responsePayload"])]
        # What the stack says, as GetFunctionEventInvokeConfig on the Lambda endpoint.
        import boto3
        lam = boto3.client("lambda", endpoint_url=app.lambda_endpoint, region_name=REGION,
                           aws_access_key_id="x", aws_secret_access_key="y")
        cfg = lam.get_function_event_invoke_config(FunctionName="fail")
        assert (cfg["MaximumRetryAttempts"], cfg["DestinationConfig"]) == (
            2, {"OnSuccess": {}, "OnFailure": {"Destination": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:audit"}})
        # LastModified: when the stack file said so, not the time of asking, and a number on the
        # wire as rest-json timestamps are (the JavaScript SDK refuses anything else).
        stack_mtime = (project.path / "sluice.yaml").stat().st_mtime
        assert abs(cfg["LastModified"].timestamp() - stack_mtime) < 0.01
        assert lam.get_function_event_invoke_config(FunctionName="fail")["LastModified"] == cfg["LastModified"]
        js = read_with_javascript_sdk(app.lambda_endpoint, "GetFunctionEventInvokeConfig", {"FunctionName": "fail"})
        assert js["output"]["MaximumRetryAttempts"] == 2, js
        assert abs(datetime.fromisoformat(js["output"]["LastModified"].replace("Z", "+00:00")).timestamp()
                   - stack_mtime) < 0.01
        # ListFunctionEventInvokeConfigs: the function's one configuration (none for a function
        # without async settings).
        listed = lam.list_function_event_invoke_configs(FunctionName="fail")["FunctionEventInvokeConfigs"]
        assert [c["FunctionArn"] for c in listed] == [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fail:$LATEST"]
        assert lam.list_function_event_invoke_configs(FunctionName="audit")["FunctionEventInvokeConfigs"] == []
        # A qualifier naming no version or alias, an unknown function, another region: 404s.
        for kw, message in (
                (dict(FunctionName="fail", Qualifier="7"),
                 f"The function arn:aws:lambda:{REGION}:{ACCOUNT}:function:fail:7 doesn't have an EventInvokeConfig"),
                (dict(FunctionName="nosuch"),
                 f"The function arn:aws:lambda:{REGION}:{ACCOUNT}:function:nosuch:$LATEST doesn't have an "
                 "EventInvokeConfig"),
                (dict(FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:fail"),
                 "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')")):
            with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
                lam.get_function_event_invoke_config(**kw)
            assert e.value.response["Message"] == message
        # A dead-letter queue shows in the function's configuration.
        assert lam.get_function_configuration(FunctionName="closed")["DeadLetterConfig"] == {
            "TargetArn": "arn:aws:sqs:us-east-1:123456789012:dead-letters"}
        assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName="fail")
        # A Python function's configuration names the runtime version its INIT_START line shows.
        conf = lam.get_function_configuration(FunctionName="audit")
        init = next(line for line in app.logs("audit").splitlines() if "INIT_START" in line)
        assert conf["RuntimeVersionConfig"]["RuntimeVersionArn"] in init


def test_an_alias_invocation_sends_to_the_alias_of_the_same_name(project):
    (project.path / "sluice.yaml").write_text(STACK.replace(
        "  ok: {code: fn/, handler: handlers.echo, async: {on_success: audit, on_failure: audit}}",
        "  ok: {code: fn/, handler: handlers.echo, aliases: {live: $LATEST}, async: {on_success: audit}}"))
    with serve(project) as app:
        app.invoke_async("ok", {}, qualifier="live")
        [d] = wait_until(lambda: [x for x in app.destinations("ok") if x.state == "delivered"])
        assert d.record["requestContext"]["functionArn"].endswith(":function:ok:live")
        audit = wait_until(lambda: app.records("audit"))
        assert [r.qualifier for r in audit] == ["live"]


def test_an_event_too_old_for_its_next_retry_is_event_age_exceeded(project):
    # The first retry would come 61 s after the failure, past a 60 s maximum age: AWS then
    # sends the record after one attempt (recorded: approximateInvokeCount 1).
    with sluice.serve(project.path / "sluice.yaml", async_retry_delays=[61, 61]) as app:
        app.invoke_async("young", {})
        [d] = wait_until(lambda: [x for x in app.destinations("young") if x.state == "delivered"])
        ctx = d.record["requestContext"]
        assert (ctx["condition"], ctx["approximateInvokeCount"]) == ("EventAgeExceeded", 1)
        assert d.record["responseContext"]["functionError"] == "Unhandled"


def test_without_an_endpoint_an_arn_destination_is_kept_but_not_sent(project, monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(var, raising=False)
    with serve(project) as app:
        app.invoke_async("closed", {"order": 7})
        [d] = wait_until(lambda: [x for x in app.destinations("closed") if x.state != "pending"
                                  and x.kind == "on_failure"])
        assert d.state == "not_sent" and "AWS_ENDPOINT_URL_SQS" in d.detail
        assert d.record["requestContext"]["condition"] == "ZeroReservedConcurrency"
        assert app.records("closed") == []  # never run


# ---- destinations outside the stack, on moto_server ------------------------------------


def receive(sqs, url, n=1, timeout=15):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"])
        got += r.get("Messages", [])
    return got


def test_zero_reserved_concurrency_sends_the_event_untried_as_aws_does(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="failed-events")["QueueUrl"]
    dead_url = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    with serve(project) as app:
        rid = app.invoke_async("closed", {"order": 7})
        [msg] = receive(sqs, url)
        body = json.loads(msg["Body"])
        # As recorded from AWS (TestLambdaConcurrency::test_reserved_concurrency): no response.
        recorded = json.loads((VECTORS / "test_lambda.snapshot.json").read_text())[
            "tests/aws/services/lambda_/test_lambda.py::TestLambdaConcurrency::test_reserved_concurrency"][
            "recorded-content"]["msg"]["Body"]
        assert list(body) == list(recorded)
        assert list(body["requestContext"]) == list(recorded["requestContext"])
        assert body["requestContext"] == {"requestId": rid,
                                          "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:closed:$LATEST",
                                          "condition": "ZeroReservedConcurrency", "approximateInvokeCount": 0}
        assert body["requestPayload"] == {"order": 7}
        deliveries = {d.kind: d for d in app.destinations("closed")}
        assert deliveries["on_failure"].state == "delivered" and deliveries["on_failure"].detail == msg["MessageId"]
        assert app.records("closed") == []
        # Its dead-letter queue gets the event, with why it never ran.
        [dead] = receive(sqs, dead_url)
        assert json.loads(dead["Body"]) == {"order": 7}
        attrs = dead["MessageAttributes"]
        assert attrs["RequestID"]["StringValue"] == rid
        assert (attrs["ErrorCode"]["StringValue"], attrs["ErrorCode"]["DataType"]) == ("429", "Number")
        assert attrs["ErrorMessage"]["StringValue"] == "Function not invoked: its reserved concurrency is 0"
        assert deliveries["dead_letter"].state == "delivered"


def test_sns_eventbridge_and_s3_destinations_get_the_record(project, aws_endpoint):
    sqs, sns, events, s3 = (aws_endpoint.client(s, REGION) for s in ("sqs", "sns", "events", "s3"))
    topic_q = sqs.create_queue(QueueName="from-topic")["QueueUrl"]
    bus_q = sqs.create_queue(QueueName="from-bus")["QueueUrl"]
    topic = sns.create_topic(Name="failures")["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs",
                        Endpoint=sqs.get_queue_attributes(QueueUrl=topic_q, AttributeNames=["QueueArn"])[
                            "Attributes"]["QueueArn"])
    sns.set_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"], AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    bus = events.create_event_bus(Name="results")["EventBusArn"]
    events.put_rule(Name="lambda-results", EventBusName="results", EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="lambda-results", EventBusName="results", Targets=[{
        "Id": "q", "Arn": sqs.get_queue_attributes(QueueUrl=bus_q, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]}])
    s3.create_bucket(Bucket="failed-records")
    with serve(project) as app:
        ok_id = app.invoke_async("remote-ok", {"k": "v"})
        fail_id = app.invoke_async("remote-fail", {"why": "sns"})
        bucket_id = app.invoke_async("to-bucket", {"why": "s3"})

        [from_topic] = receive(sqs, topic_q)
        rec = json.loads(from_topic["Body"])  # raw delivery: the Message is the record
        assert rec["requestContext"]["requestId"] == fail_id
        assert rec["requestContext"]["condition"] == "RetriesExhausted"
        assert rec["requestContext"]["approximateInvokeCount"] == 1  # max_retry_attempts: 0

        [from_bus] = receive(sqs, bus_q)
        event = json.loads(from_bus["Body"])
        assert event["source"] == "lambda"
        assert event["detail-type"] == "Lambda Function Invocation Result - Success"
        assert event["resources"] == [bus, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:remote-ok:$LATEST"]
        assert event["detail"]["requestContext"]["requestId"] == ok_id
        assert event["detail"]["responsePayload"]["event"] == {"k": "v"}

        objects = wait_until(lambda: s3.list_objects_v2(Bucket="failed-records").get("Contents", []))
        [obj] = objects
        assert re.fullmatch(r"aws/lambda/async/to-bucket/\d{4}/\d\d/\d\d/\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d-"
                            r"[0-9a-f-]{36}", obj["Key"]), obj["Key"]
        assert obj["Key"].split("/")[4:7] == obj["LastModified"].strftime("%Y/%m/%d").split("/")  # UTC date
        stored = json.loads(s3.get_object(Bucket="failed-records", Key=obj["Key"])["Body"].read())
        assert stored["requestContext"]["requestId"] == bucket_id
        assert stored["responsePayload"]["errorMessage"] == "something went wrong: s3"

        states = {d.function: (d.kind, d.state) for d in app.destinations(wait=10)}
        assert states["remote-ok"] == ("on_success", "delivered")
        assert states["remote-fail"] == ("on_failure", "delivered")
        assert states["to-bucket"] == ("on_failure", "delivered")


def test_a_destination_that_refuses_the_record_is_reported(project, aws_endpoint):
    with serve(project) as app:
        rid = app.invoke_async("lost", {})
        [d] = wait_until(lambda: [x for x in app.destinations("lost") if x.state not in ("pending",)])
        assert d.state == "failed" and d.request_id == rid
        assert "QueueDoesNotExist" in d.detail or "NonExistentQueue" in d.detail, d.detail


def test_a_dead_letter_queue_gets_the_event_and_what_went_wrong(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    with serve(project) as app:
        rid = app.invoke_async("dead", {"why": "x" * 2000})
        got = []
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1).get(
                "Messages", [])
        [msg] = got
        assert json.loads(msg["Body"]) == {"why": "x" * 2000}  # the event itself, not a record
        attrs = msg["MessageAttributes"]
        # As recorded from AWS: RequestID, ErrorCode 200 as a Number, ErrorMessage (its first KB).
        assert attrs["RequestID"] == {"StringValue": rid, "DataType": "String"}
        assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
        assert attrs["ErrorMessage"]["DataType"] == "String"
        assert attrs["ErrorMessage"]["StringValue"] == ("something went wrong: " + "x" * 2000)[:1024]
        assert len(app.records("dead")) == 2  # max_retry_attempts: 1
        [d] = app.destinations("dead")
        assert (d.kind, d.condition, d.state, d.destination) == (
            "dead_letter", "RetriesExhausted", "delivered", "arn:aws:sqs:us-east-1:123456789012:dead-letters")
