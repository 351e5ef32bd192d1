package tui

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/signin"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// Azure is how the console finds a DPS in Azure and opens it. The CLI fills
// it with what it uses itself (ARM discovery and its connect path), so the
// target picker and `--dps` reach a DPS the same way.
type Azure struct {
	// List lists the DPS instances the signed-in identity can see.
	List func(context.Context) ([]discovery.DPS, error)
	// Find resolves Reopen to one DPS (discovery's Find).
	Find func(context.Context, discovery.Query) (discovery.DPS, error)
	// Connect opens d signed in with Entra ID (AuthEntraID) or with a
	// shared access key read with ARM's ListKeys (AuthSASFromARM, only
	// when the operator asks for it).
	Connect func(context.Context, discovery.DPS, AuthMode) (*Target, error)
	// TenantID is --tenant, remembered with a pick.
	TenantID string
	// StateDir is where a pick is remembered (discovery.SaveChoice).
	StateDir string
	// Reopen is the DPS the first screen opens (--dps, or the one chosen
	// last in the state dir); the first picker takes it, later ones list.
	// nil lists and waits for a pick.
	Reopen *discovery.Query
	// ReopenAuth is how to open Reopen; "" is AuthEntraID.
	ReopenAuth AuthMode
}

// DeviceCode is the signin.Options.DeviceCode of the console: it hands the
// prompt to the target picker's sign-in in flight, which shows it in a
// dialog (the alternate screen hides stderr), and returns, so sign-in goes
// on polling until the code is entered or the picker cancels.
func DeviceCode(ctx context.Context, p signin.DeviceCodePrompt) error {
	ch, ok := ctx.Value(promptKey{}).(chan signin.DeviceCodePrompt)
	if !ok {
		return errors.New("device-code sign-in is needed, but no console dialog can show its code here: sign in with az login, or choose the DPS again with :targets")
	}
	select {
	case ch <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// promptKey carries, in a sign-in's context, where DeviceCode delivers.
type promptKey struct{}

// entraScope is the DPS data plane's, asked for the identity in the header:
// the token the DPS client uses anyway, so no second sign-in.
const entraScope = "https://azure-devices-provisioning.net/.default"

// targetsView lists the DPS instances the identity sees and opens one.
type targetsView struct {
	c      *Common
	vid    int
	az     *Azure
	table  *table.Table[discovery.DPS]
	gen    int                // the operation in flight; older results are dropped
	cancel context.CancelFunc // of the operation in flight
	doing  string             // what is in flight, for the body and Busy
	prompt *signin.DeviceCodePrompt
	reopen *discovery.Query // still to open once listed
	err    string
}

type targetsListedMsg struct {
	gen int
	all []discovery.DPS
	err error
}

type targetFoundMsg struct {
	gen int
	dps discovery.DPS
	err error
}

type targetConnectedMsg struct {
	gen      int
	dps      discovery.DPS
	auth     AuthMode
	t        *Target
	identity string // who signed in, from the token's claims
	err      error
}

// deviceCodeMsg is a sign-in's prompt; rest waits on for the operation.
type deviceCodeMsg struct {
	gen    int
	prompt signin.DeviceCodePrompt
	rest   tea.Cmd
}

// targetOpenedMsg asks the root to make t the console's target, home on it.
type targetOpenedMsg struct{ t *Target }

func newTargetsView(c *Common, az *Azure) *targetsView {
	v := &targetsView{c: c, vid: c.newID(), az: az}
	if az != nil {
		// Taken once, by the first screen: a later :targets is the picker,
		// else it would reopen the same DPS and no other could be chosen.
		v.reopen, az.Reopen = az.Reopen, nil
	}
	v.table = newTable(c, v.vid, []table.Column{
		{Title: "DPS"}, {Title: "RESOURCE GROUP"}, {Title: "LOCATION", Width: 10, MinTable: 100}, {Title: "ID SCOPE", Width: 12}, {Title: "LINKED HUBS"},
	}, func(d discovery.DPS) string { return d.ResourceID },
		func(d discovery.DPS) []string {
			return []string{d.Name, d.ResourceGroup, d.Location, d.IDScope, hubNames(d.Hubs)}
		},
		func(d discovery.DPS, q string) bool {
			return table.ContainsFold(d.Name, q) || table.ContainsFold(d.ResourceGroup, q) || table.ContainsFold(d.IDScope, q) ||
				table.ContainsFold(hubNames(d.Hubs), q)
		})
	return v
}

func hubNames(hubs []discovery.LinkedHub) string {
	names := make([]string, len(hubs))
	for i, h := range hubs {
		names[i] = h.Host
	}
	return strings.Join(names, ", ")
}

func (v *targetsView) id() int       { return v.vid }
func (v *targetsView) Title() string { return "Targets in Azure" }
func (v *targetsView) Editing() bool { return v.table.Filtering() || v.prompt != nil }
func (v *targetsView) Busy() bool    { return v.doing != "" }
func (v *targetsView) Status() string {
	if v.table.Loaded() == 0 {
		return ""
	}
	return plural(v.table.Loaded(), "DPS instance", "DPS instances")
}
func (v *targetsView) SetSize(int, int) { v.fit() } // the size is c's

func (v *targetsView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.prompt != nil:
		return []*Binding{k.CopyCode, k.Back.described("cancel the sign-in")}
	case v.table.Filtering():
		return filterHints(k)
	case v.doing != "":
		return []*Binding{k.Back}
	}
	hints := []*Binding{k.Open.described("connect with Entra ID"), k.ListKeys, k.Filter, k.Refresh}
	if d, ok := v.table.Selected(); !ok || noListKeys(d) != "" {
		hints = slices.Delete(hints, 1, 2)
	}
	return hints
}

// noListKeys says why ARM's ListKeys cannot give d's shared access key, or
// "" when it can: it names the DPS's ARM resource, and a DPS that is not
// active serves no requests, with a key or without.
func noListKeys(d discovery.DPS) string {
	switch {
	case d.SubscriptionID == "" || d.ResourceGroup == "":
		return "DPS " + d.Name + " has no ARM resource group and subscription to ask ListKeys for its keys"
	case d.State != "" && !strings.EqualFold(d.State, "Active"):
		return "DPS " + d.Name + " is " + d.State + ": it serves no requests until it is Active, so no shared access key is read"
	}
	return ""
}

func (v *targetsView) Init() tea.Cmd { return v.load() }

// start begins an operation: a new generation and a context esc cancels,
// carrying where a device-code prompt goes.
func (v *targetsView) start(doing string, fn func(context.Context, int) tea.Msg) tea.Cmd {
	v.stopOp()
	v.gen++
	v.doing, v.err = doing, ""
	ctx, cancel := context.WithCancel(v.c.Ctx)
	v.cancel = cancel
	prompts := make(chan signin.DeviceCodePrompt)
	ctx = context.WithValue(ctx, promptKey{}, prompts)
	gen, vid := v.gen, v.vid
	return do(vid, func() tea.Msg {
		done := make(chan tea.Msg, 1) // buffered: a cancelled operation's goroutine still ends
		go func() { done <- fn(ctx, gen) }()
		return awaitOp(vid, gen, done, prompts)
	})
}

// awaitOp is the operation's result, or a prompt it shows first.
func awaitOp(to, gen int, done <-chan tea.Msg, prompts <-chan signin.DeviceCodePrompt) tea.Msg {
	select {
	case msg := <-done:
		return msg
	case p := <-prompts:
		return deviceCodeMsg{gen: gen, prompt: p, rest: do(to, func() tea.Msg { return awaitOp(to, gen, done, prompts) })}
	}
}

// stopOp cancels the operation in flight; its result will be dropped.
func (v *targetsView) stopOp() {
	if v.cancel != nil {
		v.cancel()
		v.cancel = nil
	}
	v.doing, v.prompt = "", nil
}

// Stop cancels a sign-in nobody waits for once the view is gone.
func (v *targetsView) Stop() { v.stopOp() }

func (v *targetsView) load() tea.Cmd {
	if v.az == nil || v.az.List == nil {
		v.err = "the console was not started signed in to Azure: start it with --target azure (or --dps NAME) to choose a DPS here"
		return nil
	}
	list := v.az.List
	if q := v.reopen; q != nil {
		find := v.az.Find
		return v.start("finding DPS "+q.Name, func(ctx context.Context, gen int) tea.Msg {
			d, err := find(ctx, *q)
			return targetFoundMsg{gen: gen, dps: d, err: err}
		})
	}
	v.table.Reset()
	return v.start("listing the DPS instances of your subscriptions", func(ctx context.Context, gen int) tea.Msg {
		all, err := list(ctx)
		return targetsListedMsg{gen: gen, all: all, err: err}
	})
}

func (v *targetsView) connect(d discovery.DPS, auth AuthMode) tea.Cmd {
	conn, tenant, stateDir := v.az.Connect, v.az.TenantID, v.az.StateDir
	doing := "signing in to DPS " + d.Name + " with Entra ID"
	if auth == AuthSASFromARM {
		doing = "reading a shared access key of DPS " + d.Name + " with ARM ListKeys"
	}
	log := v.c.Logger
	return v.start(doing, func(ctx context.Context, gen int) tea.Msg {
		t, err := conn(ctx, d, auth)
		var who string
		if err == nil && t.Credential != nil {
			who, err = identity(ctx, t.Credential)
		}
		if err == nil && stateDir != "" {
			if serr := discovery.SaveChoice(stateDir, discovery.ChoiceOf(d, tenant, rememberedAuth(auth))); serr != nil {
				log.Warn("the next start will not reopen this target", "error", serr)
			}
		}
		return targetConnectedMsg{gen: gen, dps: d, auth: auth, t: t, identity: who, err: err}
	})
}

// rememberedAuth is the target file's word for auth.
func rememberedAuth(auth AuthMode) string {
	if auth == AuthSASFromARM {
		return "sas-from-arm"
	}
	return "login"
}

// identity names who cred signed in as, from its token's claims.
func identity(ctx context.Context, cred azcore.TokenCredential) (string, error) {
	id, err := signin.WhoAmI(ctx, cred, entraScope)
	if err != nil {
		return "", err
	}
	if id.Name != "" {
		return id.Name, nil
	}
	return id.ObjectID, nil
}

// identityMsg names who signed in to target t.
type identityMsg struct {
	t    *Target
	name string
}

// whoSignedIn reads the identity of a target opened signed in before the
// console started (--target emulator --auth login), for the header; a
// failure leaves it unnamed: the views report the sign-in's errors.
func whoSignedIn(ctx context.Context, t *Target) tea.Cmd {
	if t == nil || t.Credential == nil || t.Identity != "" {
		return nil
	}
	cred := t.Credential
	return func() tea.Msg {
		name, err := identity(ctx, cred)
		if err != nil {
			return nil
		}
		return identityMsg{t: t, name: name}
	}
}

// Escape cancels the sign-in or listing in flight, or clears the filter.
func (v *targetsView) Escape() bool {
	if v.doing != "" {
		what := v.doing
		v.stopOp()
		v.reopen = nil
		v.err = "cancelled " + what + "; r tries again"
		v.fit()
		return true
	}
	return v.table.ClearFilter()
}

func (v *targetsView) Update(msg tea.Msg) tea.Cmd {
	cmd := v.update(msg)
	v.fit()
	return cmd
}

func (v *targetsView) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case deviceCodeMsg:
		if msg.gen != v.gen || v.doing == "" {
			return nil
		}
		v.prompt = &msg.prompt
		return msg.rest
	case targetsListedMsg:
		if msg.gen != v.gen || v.doing == "" {
			return nil
		}
		v.done()
		if msg.err != nil {
			v.err = signInMessage(msg.err)
			return nil
		}
		v.table.Append(msg.all, false)
		if len(msg.all) == 0 {
			v.err = "the signed-in identity sees no DPS in any subscription: check --tenant and its role assignments (Reader on the DPS is enough to list it)"
		}
		return nil
	case targetFoundMsg:
		if msg.gen != v.gen || v.doing == "" {
			return nil
		}
		v.done()
		v.reopen = nil
		if msg.err != nil {
			cmd := v.load()
			v.err = signInMessage(msg.err)
			return cmd
		}
		return v.connect(msg.dps, cmp.Or(v.az.ReopenAuth, AuthEntraID))
	case targetConnectedMsg:
		if msg.gen != v.gen || v.doing == "" {
			return nil
		}
		v.done()
		if msg.err != nil {
			v.err = signInMessage(msg.err)
			if msg.auth == AuthSASFromARM {
				v.err = "no shared access key: " + v.err + ". Enter connects with Entra ID instead"
			}
			if v.table.Loaded() == 0 {
				return v.load()
			}
			return nil
		}
		if msg.identity != "" {
			msg.t.Identity = msg.identity
		}
		return func() tea.Msg { return targetOpenedMsg{msg.t} }
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	cmd, _ := v.table.Update(msg)
	return cmd
}

// done ends the operation that answered.
func (v *targetsView) done() {
	v.doing, v.prompt, v.cancel = "", nil, nil
}

func (v *targetsView) key(msg tea.KeyPressMsg) tea.Cmd {
	k := v.c.Keys
	if v.prompt != nil {
		switch {
		case k.CopyCode.Matches(msg):
			return tea.Batch(tea.SetClipboard(v.prompt.UserCode), flash("code copied to the clipboard (OSC 52)"))
		case k.Back.Matches(msg):
			v.Escape()
		}
		return nil
	}
	if k.Back.Matches(msg) && v.Escape() { // the first screen has no view below to pop to
		return nil
	}
	if v.doing != "" || v.table.Filtering() {
		cmd, _ := v.table.Update(msg)
		return cmd
	}
	sel, ok := v.table.Selected()
	switch {
	case k.Refresh.Matches(msg):
		return v.load()
	case k.Open.Matches(msg) && ok:
		return v.connect(sel, AuthEntraID)
	case k.ListKeys.Matches(msg) && ok:
		if why := noListKeys(sel); why != "" {
			return flashWarn(why + "; enter connects with Entra ID")
		}
		return v.connect(sel, AuthSASFromARM)
	}
	cmd, _ := v.table.Update(msg)
	v.fit() // the line above says what the row's keys do
	return cmd
}

func (v *targetsView) View() string {
	st := v.c.Styles
	if v.prompt != nil {
		p := v.prompt
		lines := []string{
			st.Title.Render("Sign in to Microsoft Entra ID"), "",
			"To sign in, use a web browser to open", "  " + st.Key.Render(p.VerificationURL), "and enter the code", "  " + st.Key.Render(p.UserCode), "",
			st.Key.Render("y") + "  copy the code    " + st.Key.Render("esc") + "  cancel the sign-in",
		}
		return st.Dialog.Width(min(v.c.Width, 90)).Render(strings.Join(lines, "\n"))
	}
	return v.topLine() + "\n\n" + v.table.View()
}

// topLine is what is in flight, the last error, or what the keys do.
func (v *targetsView) topLine() string {
	st := v.c.Styles
	switch {
	case v.doing != "":
		return st.Muted.Render(ansi.Wrap(v.doing+"… (esc cancels)", max(v.c.Width, 1), " "))
	case v.err != "":
		return errorText(v.c, v.err)
	}
	text := "enter connects with Microsoft Entra ID; s uses a shared access policy instead (its key read with ARM ListKeys)"
	if d, ok := v.table.Selected(); ok && noListKeys(d) != "" {
		text = "enter connects with Microsoft Entra ID (" + noListKeys(d) + ")"
	}
	return st.Muted.Render(ansi.Wrap(text, max(v.c.Width, 1), " "))
}

// fit gives the table the height the line above it leaves: that line
// wraps (errors do). Called after every change to it, not in View.
func (v *targetsView) fit() {
	v.table.SetSize(v.c.Width, max(v.c.Height-lipgloss.Height(v.topLine())-1, 3))
}

// signInMessage words a failed listing or connection as the CLI does: a
// failed sign-in with the way out (signin.Explain), else the error, which
// names the role.
func signInMessage(err error) string {
	if errors.Is(err, context.Canceled) {
		return "cancelled; r tries again"
	}
	return signin.Explain(err).Error()
}
