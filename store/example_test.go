package store_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/netext/netext/store"
)

// The daemon opens the store, saves a configuration with its secret, and
// refuses a change based on an outdated copy.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(filepath.Join(dir, "configurations"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	key := store.NewSecretString("private key")
	c, err := s.Create(store.Configuration{
		Name:          "office",
		ProviderID:    "org.example.wireguard",
		ServerAddress: "vpn.example.com:51820",
		OnDemand: store.OnDemand{Enabled: true, Rules: []store.OnDemandRule{
			{Action: store.ActionDisconnect, SSIDMatch: []string{"Office"}},
			{Action: store.ActionConnect},
		}},
	}, &key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Name, c.Generation, c.HasSecret, key)

	// Two clients edit generation 1; the second one must reload.
	first, second := c.Clone(), c.Clone()
	first.Enabled = true
	if _, err := s.Update(first, nil); err != nil {
		log.Fatal(err)
	}
	second.Description = "Office"
	_, err = s.Update(second, nil)
	fmt.Println(errors.Is(err, store.ErrStale), err)

	// Output:
	// office 1 true [redacted]
	// true configuration office was changed since generation 1 (now 2): reload it and try again
}
