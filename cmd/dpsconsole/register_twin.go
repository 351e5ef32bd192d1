package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// The device side of `register --report` and `--answer-methods`: the twin
// and direct methods over the device's MQTT connection to its hub.

// reportProperties sends --report to the device twin.
func (r *register) reportProperties(ctx context.Context, st dps.DeviceRegistrationState, hc *hub.DeviceClient) error {
	patch := r.reportPatch
	t0 := time.Now()
	v, err := hc.ReportProperties(ctx, patch)
	if err != nil {
		r.step("reported properties to %s failed: %v", st.AssignedHub, err)
		return fmt.Errorf("the reported properties were not accepted by %s: %w", st.AssignedHub, err)
	}
	r.step("reported properties %s to %s: reported $version %d (%dms)", compactJSON(patch), st.AssignedHub, v, time.Since(t0).Milliseconds())
	return nil
}

// serveMethods answers every direct method and prints each desired change
// until ctx ends (Ctrl-C), which is the normal end.
func (r *register) serveMethods(ctx context.Context, st dps.DeviceRegistrationState, hc *hub.DeviceClient) error {
	watch, err := hc.WatchDesired(ctx)
	if err != nil {
		return err
	}
	err = hc.OnMethod(ctx, func(_ context.Context, c hub.MethodCall) hub.MethodResponse {
		res := hub.EchoAnswer(c)
		r.step("direct method %q called with %s: answered %d %s", c.Name, c.Payload, res.Status, res.Payload)
		return res
	})
	if err != nil {
		return err
	}
	r.step("connected to %s as %s: answering direct methods and showing desired-property changes until Ctrl-C", st.AssignedHub, st.DeviceID)
	for p := range watch {
		what := "desired properties changed"
		if p.Full {
			what = "desired properties"
		}
		r.step("%s ($version %d): %s", what, p.Version, compactJSON(p.Properties))
	}
	r.step("stopped answering direct methods")
	return nil
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
