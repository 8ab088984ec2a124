package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	for _, tc := range []struct {
		conf, listen, root string
		port               int
		wantRoot, wantErr  string
	}{
		{conf: "server {\n    listen       12003;\n    location / {\n        root   /usr/share/nginx/html;\n    }\n}\n",
			listen: "listen", root: "root", port: 12003, wantRoot: "/usr/share/nginx/html"},
		{conf: "# Listen 8080\nListen 0.0.0.0:80\nDocumentRoot \"/usr/local/apache2/htdocs\"\n",
			listen: "Listen", root: "DocumentRoot", port: 80, wantRoot: "/usr/local/apache2/htdocs"},
		{conf: "listen 80;\nlisten 81;\n", listen: "listen", root: "root", port: 80},
		{conf: "", listen: "listen", root: "root"},
		{conf: "listen http;\n", listen: "listen", root: "root", wantErr: `listen "http"`},
		{conf: "listen 70000;\n", listen: "listen", root: "root", wantErr: "1-65535"},
	} {
		port, root, err := parseConf(bufio.NewScanner(strings.NewReader(tc.conf)), tc.listen, tc.root)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.conf, err, tc.wantErr)
			}
			continue
		}
		if err != nil || port != tc.port || root != tc.wantRoot {
			t.Errorf("%q: port %d root %q err %v; want %d %q", tc.conf, port, root, err, tc.port, tc.wantRoot)
		}
	}
}
