package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRelabelStatus(t *testing.T) {
	for _, tc := range []struct {
		status func() any
		want   string
	}{
		{nil, `{"status":"success","data":{"enabled":false}}`},
		{func() any { return map[string]int{"registryClusters": 2} }, `{"status":"success","data":{"registryClusters":2}}`},
	} {
		srv := httptest.NewServer(New(Options{RelabelStatus: tc.status}).Handler())
		resp, err := http.Get(srv.URL + "/api/v1/status/relabel")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusOK || string(body) != tc.want+"\n" && string(body) != tc.want {
			t.Errorf("got %d %s, want %s", resp.StatusCode, body, tc.want)
		}
	}
}
