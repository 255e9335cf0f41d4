package gateway_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/session"
)

// databaseStore is a store in a database as the gateway sees one: no
// sessions directory, and a CheckWritable that asks the database (down
// holds its error while it does not answer).
type databaseStore struct {
	session.Backend
	down atomic.Pointer[error]
}

func (d *databaseStore) CheckWritable() error {
	if err := d.down.Load(); err != nil {
		return *err
	}
	return nil
}

// TestReadyzNamesTheStore: /readyz says which store the gateway runs on;
// on a database, whether it answers, and not ready (503, the database's
// error) while it does not.
func TestReadyzNamesTheStore(t *testing.T) {
	t.Parallel()
	type ready struct {
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Store    string `json:"store"`
		Database string `json:"database"`
	}
	var h ready
	files := echoServer(t)
	files.doJSON(t, "GET", "/readyz", nil, http.StatusOK, &h)
	if h != (ready{Status: "ready", Store: "files"}) {
		t.Errorf("readyz on files = %+v, want store files and no database", h)
	}

	db := &databaseStore{}
	ts := echoServer(t, func(o *gateway.Options) { db.Backend = o.Store; o.Store = db })
	h = ready{}
	ts.doJSON(t, "GET", "/readyz", nil, http.StatusOK, &h)
	if h != (ready{Status: "ready", Store: "postgres", Database: "ok"}) {
		t.Errorf("readyz on a database that answers = %+v", h)
	}
	refused := errors.New("PostgreSQL database postgres://mc@127.0.0.1:1/chat: dial tcp 127.0.0.1:1: connect: connection refused")
	db.down.Store(&refused)
	h = ready{}
	ts.doJSON(t, "GET", "/readyz", nil, http.StatusServiceUnavailable, &h)
	if h.Status != "not_ready" || h.Store != "postgres" || h.Database != refused.Error() || h.Reason != "session store is not writable: "+refused.Error() {
		t.Errorf("readyz on a database that does not answer = %+v", h)
	}
}
