// The Node anchor of dps/fleet's benchmark: the official device SDK
// (azure-iot-provisioning-device with -http or -mqtt and
// azure-iot-security-symmetric-key), unchanged, registers COUNT devices
// PREFIX-1 … PREFIX-COUNT through an enrollment group, at most CONCURRENCY at
// once, each on its own connection as dpsconsole's fleet does: over HTTPS a
// keep-alive agent of its own (the SDK's default is Node's global agent,
// which would carry many devices over one connection), over MQTT the SDK's
// own MQTT connection. Prints "result <json>": registrations a second,
// latency percentiles, failures with an example.
//   env: DPS_DEVICE_ENDPOINT (host, port 443), DPS_MQTT_ENDPOINT (host:8883),
//        DPS_ID_SCOPE, GROUP_KEY (base64), PREFIX, COUNT, CONCURRENCY,
//        TRANSPORT (http | mqtt); NODE_EXTRA_CA_CERTS trusts the emulator's CA.
'use strict';
const crypto = require('node:crypto');
const https = require('node:https');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http: ProvisioningHttp } = require('azure-iot-provisioning-device-http');
const { Mqtt: ProvisioningMqtt } = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Http: HttpBase } = require('azure-iot-http-base');

const env = process.env;
const count = Number(env.COUNT);
const concurrency = Number(env.CONCURRENCY);
const groupKey = Buffer.from(env.GROUP_KEY, 'base64');
const mqtt = env.TRANSPORT === 'mqtt';
const host = (mqtt ? env.DPS_MQTT_ENDPOINT : env.DPS_DEVICE_ENDPOINT).replace(/:(443|8883)$/, '');

function transport() {
  if (mqtt) {
    return { t: new ProvisioningMqtt(), close: () => {} };
  }
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const base = new HttpBase();
  base.setOptions({ http: { agent } });
  return { t: new ProvisioningHttp(base), close: () => agent.destroy() };
}

async function registerOne(i) {
  const rid = `${env.PREFIX}-${i}`;
  const key = crypto.createHmac('SHA256', groupKey).update(rid, 'utf8').digest('base64');
  const { t, close } = transport();
  const client = ProvisioningDeviceClient.create(host, env.DPS_ID_SCOPE, t, new SymmetricKeySecurityClient(rid, key));
  const t0 = process.hrtime.bigint();
  try {
    const result = await client.register();
    if (result.status !== 'assigned') {
      throw new Error('status ' + result.status);
    }
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    close();
  }
}

async function main() {
  const latencies = [];
  const failures = {};
  let failed = 0;
  let next = 1;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (next <= count) {
      const i = next++;
      try {
        latencies.push(await registerOne(i));
      } catch (err) {
        failed++;
        const msg = String(err && err.message ? err.message : err).replaceAll(`${env.PREFIX}-${i}`, '<id>');
        failures[msg] = (failures[msg] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)] : 0);
  console.log('result ' + JSON.stringify({
    assigned: latencies.length, failed, seconds, perSecond: latencies.length / seconds,
    p50Ms: q(0.5), p99Ms: q(0.99), failures,
  }));
}

main().catch((err) => {
  console.error('FAIL: ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});
