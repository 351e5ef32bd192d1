package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"sync"
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

// TestManyMethodCallsShareOneConnection: a service calling 300 methods at
// once, each held by the device until all have arrived, is answered on its
// one HTTP/2 connection. (net/http dials another TLS connection for each
// request past a connection's stream limit; past net/http's default 250 a
// burst of calls dialed thousands and starved itself.)
func TestManyMethodCallsShareOneConnection(t *testing.T) {
	const calls = 300
	em, reg, devs, opts := provisioned(t, 1)
	dc, err := hub.NewDeviceClient(reg.Host(), "dev-00", devs["dev-00"], &hub.ClientOptions{ClientOptions: opts, Transport: mqttconn.MQTT, MQTTHost: em.Env().HubMQTTEndpoints[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	var arrived sync.WaitGroup
	arrived.Add(calls)
	if err := dc.OnMethod(t.Context(), func(ctx context.Context, _ hub.MethodCall) hub.MethodResponse {
		arrived.Done()
		arrived.Wait() // every call is in flight at once
		return hub.MethodResponse{Status: 200}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetTwin(t.Context(), "dev-00"); err != nil { // the connection is up
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		mu.Lock()
		conns[i.Conn] = true
		mu.Unlock()
	}})
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			res, err := reg.InvokeMethod(ctx, "dev-00", "hold", nil, &hub.MethodOptions{ResponseTimeout: 20 * time.Second})
			if err == nil && res.Status != 200 {
				err = fmt.Errorf("status %d", res.Status)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(conns) != 1 {
		t.Errorf("%d method calls at once used %d connections, want 1", calls, len(conns))
	}
}
