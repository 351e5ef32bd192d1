package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/tui"
)

// The console's target picker lists, finds and connects through the CLI's
// own paths (listDPS, Find, connectDPS): what it opens is signed in with
// Entra ID, reaches the linked hubs with the credential, and a ListKeys key
// only when asked.
func TestConsoleAzureConnectsThroughTheCLIsPath(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	a := &app{stateDir: c.stateDir, azure: azureFlags{target: targetAzure}}
	a.err = io.Discard
	tr, caPEM, err := a.azureTransport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	az, err := a.consoleAzure(tr, caPEM, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if az.Reopen != nil {
		t.Fatalf("nothing chosen yet, nothing to reopen: %+v", az.Reopen)
	}
	ctx := context.Background()
	all, err := az.List(ctx)
	if err != nil || len(all) != 1 || all[0].IDScope != env.IDScope {
		t.Fatalf("List = %+v, %v; want the emulator's DPS", all, err)
	}
	tt, err := az.Connect(ctx, all[0], tui.AuthEntraID)
	if err != nil {
		t.Fatal(err)
	}
	if tt.Auth != tui.AuthEntraID || tt.Credential == nil || len(tt.LinkedHubs) != len(env.HubConnectionStrings) || tt.IDScope != env.IDScope {
		t.Fatalf("target %+v: want Entra ID, a credential, %d linked hubs, scope %s", tt, len(env.HubConnectionStrings), env.IDScope)
	}
	if _, err := tt.Service.GetEnrollmentGroup(ctx, "hashed-fleet"); err != nil {
		t.Fatalf("the DPS on bearer tokens: %v", err)
	}
	regs, err := tt.Registries()
	if err != nil || len(regs) != len(env.HubConnectionStrings) {
		t.Fatalf("registries signed in: %d, %v", len(regs), err)
	}
	sas, err := az.Connect(ctx, all[0], tui.AuthSASFromARM)
	if err != nil || sas.Auth != tui.AuthSASFromARM {
		t.Fatalf("ListKeys, asked: %+v, %v", sas, err)
	}

	// Chosen once (the picker saves it), the next console reopens it signed in.
	if err := discovery.SaveChoice(a.stateDir, discovery.ChoiceOf(all[0], "", "sas-from-arm")); err != nil {
		t.Fatal(err)
	}
	az, err = a.consoleAzure(tr, caPEM, slog.New(slog.DiscardHandler))
	if err != nil || az.Reopen == nil || az.Reopen.Name != env.DPSName || az.ReopenAuth != tui.AuthEntraID {
		t.Fatalf("reopen %+v as %q, %v; want %s signed in (a key only when --auth asks)", az.Reopen, az.ReopenAuth, err, env.DPSName)
	}
}
