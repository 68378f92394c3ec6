// Sends one command of @aws-sdk/client-lambda (AWS SDK for JavaScript v3) to sluice's Lambda
// endpoint and prints one JSON line: {"output": ...} (dates as ISO strings) or {"error": ...}.
// The SDK's deserializers are strict about types (a timestamp must be a number), so this
// checks what botocore's lenient parser lets through.
// usage: node read_sdk.js ENDPOINT COMMAND INPUT_JSON   (COMMAND: e.g. GetFunctionEventInvokeConfig)
const lambda = require('@aws-sdk/client-lambda');

async function main() {
  const [endpoint, command, input] = process.argv.slice(2);
  const client = new lambda.LambdaClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  const Command = lambda[command + 'Command'];
  if (!Command) throw new Error('no such command: ' + command);
  try {
    const out = await client.send(new Command(JSON.parse(input)));
    delete out.$metadata;
    console.log(JSON.stringify({ output: out }));
  } catch (err) {
    console.log(JSON.stringify({ error: err.name, message: err.message, status: err.$metadata && err.$metadata.httpStatusCode }));
  }
}

main();
