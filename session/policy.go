package session

import (
	"errors"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netsettings"
)

// Policy is a protection of the host that follows each run of a session
// beside the run's network configuration, such as the daemon's leak
// protection (package firewall). A run calls the methods of its policies
// from one goroutine at a time, in this order:
//
//   - Begin(iface) when the run begins connecting, before the provider is
//     launched. iface is the name the run's tunnel interface will have
//     (Config.DeviceName); the interface does not exist yet. An error
//     fails the start with CodePolicyFailed: nothing runs unprotected.
//   - Apply(iface, s) with each settings the host admitted, before the
//     network configuration applies them, and with nil when the provider
//     clears its settings. When the network configuration then fails,
//     Apply is called again with the settings that stay in force (nil
//     when there are none). An error refuses the settings: the
//     provider's request fails and the network configuration is not
//     touched.
//   - End(iface) once when the run has ended: after the provider is gone,
//     the network configuration removed and the device closed, and before
//     the session reports disconnected. It follows every Begin, also one
//     that failed. An error makes the teardown fail (CodeTeardownFailed).
//
// Policies are begun and applied in the order of Config.Policies and
// ended in the reverse order. Their errors are shown to people as they
// are, so they should say what failed. Their methods must not wait for
// the session (Stop, Start).
type Policy interface {
	Begin(iface string) error
	Apply(iface string, s *netsettings.Settings) error
	End(iface string) error
}

// beginPolicies begins the policies of the run. It stops at the first
// error; endPolicies ends every policy begun, the failed one too.
func (r *run) beginPolicies() error {
	for i, p := range r.cfg.Policies {
		r.policiesBegun = i + 1
		if err := p.Begin(r.cfg.DeviceName); err != nil {
			return newError(CodePolicyFailed, err.Error())
		}
	}
	return nil
}

// endPolicies ends the policies begun, last first.
func (r *run) endPolicies() error {
	var errs []error
	for i := r.policiesBegun - 1; i >= 0; i-- {
		if err := r.cfg.Policies[i].End(r.cfg.DeviceName); err != nil {
			errs = append(errs, err)
		}
	}
	r.policiesBegun = 0
	return errors.Join(errs...)
}

// applyPolicies applies s (nil: no settings) to every policy. When one
// fails, those before it go back to prev.
func (r *run) applyPolicies(s, prev *netsettings.Settings) error {
	for i, p := range r.cfg.Policies {
		if err := p.Apply(r.cfg.DeviceName, s); err != nil {
			for _, q := range r.cfg.Policies[:i] {
				if rerr := q.Apply(r.cfg.DeviceName, prev); rerr != nil {
					r.log.Error("restoring a policy to the previous settings failed", "err", rerr)
				}
			}
			return err
		}
	}
	return nil
}

// policyStopReason is the reason a run stops when its policies cannot
// begin.
const policyStopReason = providerproto.StopConfigurationFailed
