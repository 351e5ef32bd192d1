package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ChoiceFile is the file in the state directory that remembers the chosen
// target.
const ChoiceFile = "target.json"

// Choice is a DPS the operator chose, remembered per state directory so
// the next start reopens it. It names the DPS and how to sign in, never a
// key or a token.
type Choice struct {
	DPS            string `json:"dps"`
	ResourceGroup  string `json:"resourceGroup"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId,omitempty"` // --tenant, when one was given
	Auth           string `json:"auth"`               // "login" (Entra ID) or "sas-from-arm" (ListKeys)
}

// ChoiceOf is the choice of d, signed in with auth.
func ChoiceOf(d DPS, tenantID, auth string) Choice {
	return Choice{DPS: d.Name, ResourceGroup: d.ResourceGroup, SubscriptionID: d.SubscriptionID, TenantID: tenantID, Auth: auth}
}

// Query is the query that finds the chosen DPS again.
func (c Choice) Query() Query {
	return Query{Name: c.DPS, ResourceGroup: c.ResourceGroup, Subscription: c.SubscriptionID}
}

// SaveChoice remembers c in stateDir (0600; replaced whole, through a
// rename, so a crash leaves the old choice or the new one).
func SaveChoice(stateDir string, c Choice) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("remember the target: %w", err)
	}
	tmp, err := os.CreateTemp(stateDir, "."+ChoiceFile+".*") // CreateTemp makes it 0600
	if err != nil {
		return fmt.Errorf("remember the target: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(append(b, '\n'))
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return fmt.Errorf("remember the target: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(stateDir, ChoiceFile)); err != nil {
		return fmt.Errorf("remember the target: %w", err)
	}
	return nil
}

// LoadChoice reads the remembered choice; ok is false when there is none.
func LoadChoice(stateDir string) (c Choice, ok bool, err error) {
	path := filepath.Join(stateDir, ChoiceFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Choice{}, false, nil
	}
	if err != nil {
		return Choice{}, false, fmt.Errorf("read the remembered target: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.DPS == "" {
		return Choice{}, false, fmt.Errorf("the remembered target %s is not readable (%v): delete it, or choose the DPS again with --dps NAME", path, err)
	}
	return c, true, nil
}
