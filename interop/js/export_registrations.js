// The Node side of BenchmarkExportVsNode: lists every registration record of
// group $EXPORT_GROUP with the official service SDK's registration-state
// query (1,000 a page, the most DPS serves) and writes each as a JSON line to
// $EXPORT_FILE, as `dpsconsole registrations export --format jsonl` does.
// Prints the number of records written.
'use strict';
const fs = require('node:fs');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');

async function main() {
  const client = ProvisioningServiceClient.fromConnectionString(process.env.DPS_CONNECTION_STRING);
  const out = fs.createWriteStream(process.env.EXPORT_FILE, { mode: 0o600 });
  const query = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, process.env.EXPORT_GROUP, 1000);
  let n = 0;
  while (query.hasMoreResults) {
    const page = (await query.next(query.continuationToken)).responseBody;
    // One write a page, waiting for the stream to drain like a careful exporter.
    if (!out.write(page.map((r) => JSON.stringify(r)).join('\n') + (page.length ? '\n' : ''))) {
      await new Promise((resolve) => out.once('drain', resolve));
    }
    n += page.length;
  }
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
  console.log(n);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
