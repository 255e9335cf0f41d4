package providertest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// CheckedKey is the API key WantKeyCheck gives the provider: OpenAI's
// error_401.json fixture quotes it, as the real API quotes the key it
// refused, so the check that no error holds the key has one to find.
const CheckedKey = "sk-bad"

// WantKeyCheck checks a provider's CheckKey against the fake API, answering
// GET path (the provider's list of models): the list (the fixture
// models.json, as the API sends it) is accepted after one request carrying
// the key (in the header keyHeader); 401 and 403 (error_401.json,
// error_403.json) are core.ErrKeyRejected naming keyVar and the API's
// message; a 500 and a server that is gone are other errors; none is
// retried, and no error holds the key. newChecker builds the provider with
// the fake's URL and the key.
func WantKeyCheck(t *testing.T, path, keyHeader, keyVar string, newChecker func(url, key string) core.KeyChecker) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cases := []struct {
		name     string
		reply    Reply
		rejected bool
		want     string // in the error; "" for none
	}{
		{"accepted", APIError(t, http.StatusOK, "models.json"), false, ""},
		{"401", APIError(t, http.StatusUnauthorized, "error_401.json"), true, "401"},
		{"403", APIError(t, http.StatusForbidden, "error_403.json"), true, "403"},
		{"500", APIError(t, http.StatusInternalServerError, "error_500.json"), false, "500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := NewFakeAPI(t, tc.reply)
			err := newChecker(api.URL(), CheckedKey).CheckKey(ctx)
			req := api.Only(t)
			if req.Method != http.MethodGet || req.Path != path || !strings.Contains(req.Header.Get(keyHeader), CheckedKey) {
				t.Errorf("request %s %s with %s %q, want GET %s with the key", req.Method, req.Path, keyHeader, req.Header.Get(keyHeader), path)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckKey = %v, want nil", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("CheckKey = nil, want an error with %s", tc.want)
			}
			if errors.Is(err, core.ErrKeyRejected) != tc.rejected || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckKey = %q: rejected %v, want %v, with %s", err, errors.Is(err, core.ErrKeyRejected), tc.rejected, tc.want)
			}
			if tc.rejected && !strings.Contains(err.Error(), keyVar) {
				t.Errorf("CheckKey = %q, want it to name %s", err, keyVar)
			}
			if strings.Contains(err.Error(), CheckedKey) {
				t.Errorf("CheckKey = %q: it holds the key", err)
			}
		})
	}
	t.Run("server gone", func(t *testing.T) {
		api := NewFakeAPI(t, APIError(t, http.StatusOK, "models.json"))
		url := api.URL()
		api.srv.Close()
		err := newChecker(url, CheckedKey).CheckKey(ctx)
		if err == nil || errors.Is(err, core.ErrKeyRejected) {
			t.Errorf("CheckKey on a closed port = %v, want an error that is not a rejection", err)
		}
	})
}
