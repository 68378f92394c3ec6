// Invokes a function through @aws-sdk/client-lambda (AWS SDK for JavaScript v3)
// against sluice's Invoke API; prints one JSON line with what the SDK returned.
// usage: node invoke_sdk.js ENDPOINT FUNCTION PAYLOAD_JSON [QUALIFIER]
const { LambdaClient, InvokeCommand } = require('@aws-sdk/client-lambda');

async function main() {
  const [endpoint, fn, payload, qualifier] = process.argv.slice(2);
  const client = new LambdaClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  try {
    const out = await client.send(new InvokeCommand({
      FunctionName: fn,
      Payload: Buffer.from(payload),
      Qualifier: qualifier || undefined,
      LogType: 'Tail',
    }));
    console.log(JSON.stringify({
      statusCode: out.StatusCode,
      executedVersion: out.ExecutedVersion,
      functionError: out.FunctionError || null,
      payload: Buffer.from(out.Payload).toString('utf8'),
      log: out.LogResult ? Buffer.from(out.LogResult, 'base64').toString('utf8') : null,
    }));
  } catch (err) {
    console.log(JSON.stringify({ error: err.name, message: err.message, status: err.$metadata && err.$metadata.httpStatusCode }));
  }
}

main();
