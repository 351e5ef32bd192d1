package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
)

// TestMethodHandlerEndsOnClose: a handler still running when the device
// client is closed sees its context end (canceled), so it can stop.
func TestMethodHandlerEndsOnClose(t *testing.T) {
	em, reg, devs, opts := provisioned(t, 1)
	dc, err := hub.NewDeviceClient(reg.Host(), "dev-00", devs["dev-00"], &hub.ClientOptions{ClientOptions: opts, Transport: mqttconn.MQTT, MQTTHost: em.Env().HubMQTTEndpoints[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	started, ended := make(chan struct{}), make(chan error, 1)
	if err := dc.OnMethod(t.Context(), func(ctx context.Context, _ hub.MethodCall) hub.MethodResponse {
		if ctx.Err() != nil {
			ended <- errors.New("the context ended before the client was closed")
		}
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return hub.MethodResponse{Status: 200}
	}); err != nil {
		t.Fatal(err)
	}
	go reg.InvokeMethod(t.Context(), "dev-00", "wait", nil, &hub.MethodOptions{ResponseTimeout: 5 * time.Second})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was not called")
	}
	dc.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler context ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end when the client was closed")
	}
}
