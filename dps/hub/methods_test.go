package hub_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestInvokeMethodAnswered: a device connected over MQTT (paho) answers the
// call; InvokeMethod returns its status and payload. One that stays silent
// is a 504 after the response timeout, and the client does not retry it.
func TestInvokeMethodAnswered(t *testing.T) {
	em, test, devs, opts := provisioned(t, 1)
	host := test.Host()
	// The client as the console builds it: azcore's default retry policy.
	reg, err := hub.NewRegistryClientFromConnectionString(em.Env().HubConnectionStrings[0], &hub.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: opts.Transport}})
	if err != nil {
		t.Fatal(err)
	}
	o := paho.NewClientOptions().AddBroker("ssl://" + em.Env().HubMQTTEndpoints[0]).SetClientID("dev-00").
		SetUsername(host + "/dev-00/?api-version=2021-04-12").
		SetPassword(keys.SignSAS(host+"/devices/dev-00", devs["dev-00"], "", time.Now().Add(time.Hour))).
		SetTLSConfig(&tls.Config{RootCAs: em.CertPool()}).SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	calls := make(chan string, 4)
	answer := func(_ paho.Client, m paho.Message) {
		name, rest, _ := strings.Cut(strings.TrimPrefix(m.Topic(), "$iothub/methods/POST/"), "/?$rid=")
		calls <- name
		if name == "add" {
			var in struct{ A, B int }
			json.Unmarshal(m.Payload(), &in)
			out, _ := json.Marshal(map[string]int{"sum": in.A + in.B})
			c.Publish("$iothub/methods/res/200/?$rid="+rest, 0, false, out)
		}
	}
	if tok := c.Subscribe("$iothub/methods/POST/#", 0, answer); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	res, err := reg.InvokeMethod(t.Context(), "dev-00", "add", json.RawMessage(`{"a":2,"b":3}`), &hub.MethodOptions{ResponseTimeout: 5 * time.Second})
	if err != nil || res.Status != 200 || string(res.Payload) != `{"sum":5}` {
		t.Fatalf("add: %+v, %v", res, err)
	}
	<-calls

	start := time.Now()
	_, err = reg.InvokeMethod(t.Context(), "dev-00", "silent", nil, &hub.MethodOptions{ResponseTimeout: 5 * time.Second})
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusGatewayTimeout || re.ErrorCode != "GatewayTimeout" || time.Since(start) > 9*time.Second {
		t.Fatalf("silent device: %v after %v, want 504 GatewayTimeout after 5 s", err, time.Since(start))
	}
	<-calls
	if len(calls) != 0 {
		t.Errorf("the device got %d more calls: a timed-out call was retried", len(calls))
	}
}
