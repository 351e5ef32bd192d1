package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/signin"
	"github.com/dpsconsole/dpsconsole/tui"
)

// consoleTarget is t as the console works on it, with the journal of the
// groups it sees (per DPS host) opened.
func (a *app) consoleTarget(t *target, logger *slog.Logger) *tui.Target {
	journal, err := cleanup.OpenJournal(a.stateDir, t.client.Host())
	if err != nil {
		logger.Warn("no known-groups journal; orphan detection will be weaker", "error", err)
	}
	ct := t.tuiTarget()
	ct.Journal, ct.StateDir = journal, a.stateDir
	return ct
}

// consoleAzure signs in for a console on a DPS in Azure, its device-code
// prompt shown in the console, and gives the target picker the CLI's own
// ways to list, find and connect (connectDPS). The picker opens --dps, else
// the DPS chosen last, else lists. tr is the transport of every DPS it opens.
func (a *app) consoleAzure(tr *http.Client, caPEM []byte, logger *slog.Logger) (*tui.Azure, error) {
	var reopen *discovery.Query
	reopenAuth := tui.AuthEntraID
	if a.azure.auth == authSASFromARM { // asked for on the command line: not silent
		reopenAuth = tui.AuthSASFromARM
	}
	if a.azure.dps != "" {
		reopen = &discovery.Query{Name: a.azure.dps, ResourceGroup: a.azure.resourceGroup, Subscription: a.azure.subscription}
	} else if c, ok, err := discovery.LoadChoice(a.stateDir); err != nil {
		return nil, err
	} else if ok {
		// Reopened signed in: a shared access key (c.Auth sas-from-arm) is
		// read only when --auth asks for it again, as the CLI does.
		q := c.Query()
		reopen = &q
		a.adoptTenant(c)
	}
	// Stderr is the console's screen: a listing's notes go to its log.
	s, err := a.signInShowing(tr, tui.DeviceCode, func(msg string) { logger.Warn(msg) })
	if err != nil {
		return nil, err
	}
	return &tui.Azure{
		List: func(ctx context.Context) ([]discovery.DPS, error) { return a.listDPS(ctx, s) },
		Find: func(ctx context.Context, q discovery.Query) (discovery.DPS, error) {
			d, err := s.disc.Find(ctx, q)
			if err != nil {
				return d, signin.Explain(err)
			}
			return d, nil
		},
		Connect: func(ctx context.Context, d discovery.DPS, auth tui.AuthMode) (*tui.Target, error) {
			how := authLogin
			if auth == tui.AuthSASFromARM {
				how = authSASFromARM
			}
			t, err := connectDPS(ctx, s, d, how, tr, caPEM)
			if err != nil {
				return nil, signin.Explain(err)
			}
			return a.consoleTarget(t, logger), nil
		},
		TenantID: a.azure.tenant, StateDir: a.stateDir, Reopen: reopen, ReopenAuth: reopenAuth,
	}, nil
}

// azureTransport is the transport of a console on Azure: the system roots
// plus --ca-file (a standalone emulator's CA), failing fast when unreachable.
func (a *app) azureTransport() (*http.Client, []byte, error) {
	caPEM, err := a.readCA()
	if err != nil {
		return nil, nil, err
	}
	tr, err := dps.NewTransport(caPEM)
	if err != nil {
		return nil, nil, err
	}
	tui.FailFast(tr)
	return tr, caPEM, nil
}
