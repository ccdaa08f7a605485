package domaintest

import (
	"math/rand/v2"
	"testing"

	"github.com/accountdb/accountdb/domain"
)

// TestCorpusCoversTheDomain: a read model that counts every event (the
// tenant_activity projector) is only proven on every type if the corpus has
// them all, so a new event type must be added to Corpus too.
func TestCorpusCoversTheDomain(t *testing.T) {
	for seed := range uint64(20) {
		seen := map[string]bool{}
		streams := map[string]bool{}
		for _, s := range Corpus(rand.New(rand.NewPCG(seed, 0)), 1) {
			if streams[s.ID.String()] {
				t.Fatalf("seed %d: stream %s twice", seed, s.ID)
			}
			streams[s.ID.String()] = true
			for _, e := range s.Events {
				seen[e.EventType()] = true
			}
		}
		for _, typ := range domain.EventTypes() {
			if !seen[typ] {
				t.Errorf("seed %d: no %s event in the corpus", seed, typ)
			}
		}
	}
}
