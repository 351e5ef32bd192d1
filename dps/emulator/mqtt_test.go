package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// mqttConnect connects paho to broker (ssl://host:port or wss://host/path).
func mqttConnect(t *testing.T, e *Emulator, broker, clientID, user, password string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).
		SetClientID(clientID).SetUsername(user).SetPassword(password).
		SetTLSConfig(&tls.Config{RootCAs: e.CertPool()}).SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// dpsSession subscribes to the response topic and returns a function that
// publishes a request and waits for its answer.
func dpsSession(t *testing.T, c paho.Client) func(topic, payload string) (string, dps.RegistrationOperationStatus, []byte) {
	msgs := make(chan paho.Message, 8)
	if tok := c.Subscribe("$dps/registrations/res/#", 1, func(_ paho.Client, m paho.Message) { msgs <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return func(topic, payload string) (string, dps.RegistrationOperationStatus, []byte) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
		select {
		case m := <-msgs:
			var st dps.RegistrationOperationStatus
			json.Unmarshal(m.Payload(), &st)
			return m.Topic(), st, m.Payload()
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer to %s", topic)
		}
		return "", dps.RegistrationOperationStatus{}, nil
	}
}

func TestMQTTRegistrationAndTelemetry(t *testing.T) {
	e := startTest(t, Options{Seed: "demo", AssignmentDelay: 200 * time.Millisecond})
	scope := e.Env().IDScope
	groupKey, _ := keys.ParseKey(TutorialGroupKey)
	const rid = "mqtt-dev-1"
	devKey, _ := keys.DeriveDeviceKey(groupKey, rid)
	user := scope + "/registrations/" + rid + "/api-version=2019-03-31&ClientVersion=test%2F1.0"

	c := mqttConnect(t, e, "ssl://"+e.Env().MQTTEndpoint, rid, user, keys.SignSAS(scope+"/registrations/"+rid, devKey, "registration", time.Now().Add(time.Hour)))
	ask := dpsSession(t, c)
	topic, st, body := ask("$dps/registrations/PUT/iotdps-register/?$rid=1", `{"registrationId":"`+rid+`","payload":null}`)
	if !strings.HasPrefix(topic, "$dps/registrations/res/202/?$rid=1&retry-after=") || st.Status != dps.StatusAssigning || st.OperationID == "" {
		t.Fatalf("register answer %s: %s", topic, body)
	}
	for i := 2; st.Status == dps.StatusAssigning; i++ {
		if i > 20 {
			t.Fatal("still assigning after 20 polls")
		}
		time.Sleep(100 * time.Millisecond)
		topic, st, body = ask("$dps/registrations/GET/iotdps-get-operationstatus/?$rid="+strconv.Itoa(i)+"&operationId="+st.OperationID, " ")
	}
	if !strings.HasPrefix(topic, "$dps/registrations/res/200/?$rid=") || st.Status != dps.StatusAssigned || st.RegistrationState == nil || st.RegistrationState.AssignedHub != e.hubs[0].HostName {
		t.Fatalf("final answer %s: %s", topic, body)
	}

	// A wrong key is answered with 401 on the response topic.
	bad := mqttConnect(t, e, "ssl://"+e.Env().MQTTEndpoint, "mqtt-dev-2", scope+"/registrations/mqtt-dev-2/api-version=2019-03-31",
		keys.SignSAS(scope+"/registrations/mqtt-dev-2", keys.GenerateKey(), "registration", time.Now().Add(time.Hour)))
	topic, _, body = dpsSession(t, bad)("$dps/registrations/PUT/iotdps-register/?$rid=7", `{"registrationId":"mqtt-dev-2"}`)
	if !strings.HasPrefix(topic, "$dps/registrations/res/401/?$rid=7") || !strings.Contains(string(body), "401") {
		t.Fatalf("wrong key: %s %s", topic, body)
	}

	// Telemetry to the assigned hub with the same key.
	hubHost := st.RegistrationState.AssignedHub
	hc := mqttConnect(t, e, "ssl://"+e.Env().HubMQTTEndpoints[0], rid, hubHost+"/"+rid+"/?api-version=2021-04-12", keys.SignSAS(hubHost+"/devices/"+rid, devKey, "", time.Now().Add(time.Hour)))
	for range 3 {
		if tok := hc.Publish("devices/"+rid+"/messages/events/color=blue", 1, false, `{"t":21.5}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("telemetry: %v", tok.Error())
		}
	}
	dev, err := e.HubDevice(context.Background(), hubHost, rid)
	if err != nil || dev.MessageCount != 3 {
		t.Fatalf("hub device after 3 messages: %+v, %v", dev, err)
	}
}

// TestMQTTThrottled: past the rate limit a register is answered with 429 and
// a retry-after on the response topic, which makes the SDKs retry.
func TestMQTTThrottled(t *testing.T) {
	e := startTest(t, Options{Seed: "demo", ThrottlePerMinute: 1})
	scope := e.Env().IDScope
	groupKey, _ := keys.ParseKey(TutorialGroupKey)
	const rid = "mqtt-throttled"
	devKey, _ := keys.DeriveDeviceKey(groupKey, rid)
	c := mqttConnect(t, e, "ssl://"+e.Env().MQTTEndpoint, rid, scope+"/registrations/"+rid+"/api-version=2019-03-31",
		keys.SignSAS(scope+"/registrations/"+rid, devKey, "registration", time.Now().Add(time.Hour)))
	ask := dpsSession(t, c)
	if topic, _, body := ask("$dps/registrations/PUT/iotdps-register/?$rid=1", `{"registrationId":"`+rid+`"}`); !strings.HasPrefix(topic, "$dps/registrations/res/20") {
		t.Fatalf("first register: %s %s", topic, body)
	}
	topic, _, body := ask("$dps/registrations/PUT/iotdps-register/?$rid=2", `{"registrationId":"`+rid+`"}`)
	if !strings.HasPrefix(topic, "$dps/registrations/res/429/?$rid=2&retry-after=") || !strings.Contains(string(body), "429001") {
		t.Fatalf("throttled register: %s %s", topic, body)
	}
}

func TestMQTTLogNeverHoldsAPacket(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(minLevel{slog.NewTextHandler(&buf, nil), slog.LevelWarn})
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}}
	pk.Connect.Password = []byte("SharedAccessSignature sr=x&sig=SECRET&se=1")
	// What mochi logs when a client sends a second CONNECT.
	log.Warn("error processing packet", "error", packets.ErrProtocolViolationSecondConnect, "client", "dev-1", "pk", pk, "packet", &pk)
	// The text handler prints the password as a byte list, so look for the attributes.
	if out := buf.String(); strings.Contains(out, "pk=") || strings.Contains(out, "packet=") || !strings.Contains(out, "client=dev-1") {
		t.Errorf("log line %q: want the client and no packet", out)
	}
	buf.Reset()
	log.Warn(mqtt.ErrMinimumKeepalive.Error(), "client", "dev-1", "keepalive", 0)
	if buf.Len() != 0 {
		t.Errorf("mochi's keep-alive advice was logged: %q", buf.String())
	}
}
