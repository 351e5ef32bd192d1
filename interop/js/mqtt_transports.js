// Drives the official Node SDKs over both MQTT transports, unchanged, against
// the emulator on the README layout (DPS on 127.0.N.1, hubs on .2 and .3;
// HTTPS/WebSockets on 443, MQTT on 8883 of each):
//   - azure-iot-provisioning-device-mqtt Mqtt and MqttWs each register a
//     device through GROUP_KEY's group (key derived per registration ID);
//   - azure-iot-device-mqtt Mqtt and MqttWs each send TELEMETRY_COUNT
//     messages as one of those devices to its assigned hub;
//   - a wrong device key is refused at CONNECT by the hub over Mqtt and
//     MqttWs, and by DPS (401 on the response topic) over MqttWs.
// Prints "ok <step>" for each step and "result <json>" with the devices.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const provisioningMqtt = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client, Message } = require('azure-iot-device');
const deviceMqtt = require('azure-iot-device-mqtt');

const env = process.env;
const ok = (step) => console.log('ok ' + step);
const dpsHost = env.DPS_DEVICE_ENDPOINT; // 127.0.N.1: the SDKs add :8883 or :443/$iothub/websocket

function deriveKey(groupKey, registrationId) {
  return crypto.createHmac('SHA256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64');
}

async function register(Transport, regId, key) {
  const client = ProvisioningDeviceClient.create(dpsHost, env.DPS_ID_SCOPE, new Transport(), new SymmetricKeySecurityClient(regId, key));
  return client.register();
}

async function sendTelemetry(Transport, result, key, n) {
  const cs = `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key}`;
  const device = Client.fromConnectionString(cs, Transport);
  await device.open();
  for (let i = 1; i <= n; i++) {
    const msg = new Message(JSON.stringify({ seq: i }));
    msg.messageId = `${result.deviceId}-${i}`;
    msg.contentType = 'application/json';
    msg.properties.add('source', 'node-interop');
    await device.sendEvent(msg);
  }
  await device.close();
}

async function main() {
  const n = Number(env.TELEMETRY_COUNT);
  const devices = [];
  for (const name of ['Mqtt', 'MqttWs']) {
    const regId = `${env.REG_PREFIX}-${name.toLowerCase()}`;
    const key = deriveKey(env.GROUP_KEY, regId);
    const result = await register(provisioningMqtt[name], regId, key);
    assert.equal(result.status, 'assigned', JSON.stringify(result));
    assert.equal(result.deviceId, regId);
    assert.ok(result.assignedHub, 'an assigned hub');
    ok(`register over provisioning ${name}`);
    await sendTelemetry(deviceMqtt[name], result, key, n);
    ok(`telemetry over device ${name}`);
    devices.push({ transport: name, deviceId: result.deviceId, assignedHub: result.assignedHub, key });
  }

  // A wrong key: the hub refuses the CONNECT (return code 5); the SDK's
  // default retry policy does not retry an UnauthorizedError.
  for (const name of ['Mqtt', 'MqttWs']) {
    const d = devices[0];
    const cs = `HostName=${d.assignedHub};DeviceId=${d.deviceId};SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`;
    const device = Client.fromConnectionString(cs, deviceMqtt[name]);
    await assert.rejects(device.open(), (err) => {
      assert.equal(err.name, 'UnauthorizedError', String(err));
      return true;
    });
    ok(`wrong key refused at CONNECT over device ${name}`);
  }
  // DPS over WebSockets answers a wrong key with 401 on the response topic.
  await assert.rejects(register(provisioningMqtt.MqttWs, `${env.REG_PREFIX}-wrong`, Buffer.alloc(32, 1).toString('base64')), (err) => {
    console.log('ok wrong key rejected by DPS over MqttWs: ' + err.name);
    return true;
  });
  console.log('result ' + JSON.stringify(devices.map(({ key, ...d }) => d)));
}

main().catch((err) => {
  console.error('FAILED:', err && err.stack ? err.stack : err);
  process.exit(1);
});
