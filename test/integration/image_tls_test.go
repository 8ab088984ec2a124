package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA makes a CA and a server certificate for 127.0.0.1, as PEM files in dir.
func testCA(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "isulad test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv.key")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return
}

// TestImageTLS: a TLS registry is trusted through certs.d/<host>/ca.crt; without it the
// pull fails with one line saying TLS.
func TestImageTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, cert, key := testCA(t, dir)
	reg := startRegistry(t, nil, cert, key)
	// Feed it through skopeo with the CA.
	ldir := filepath.Join(t.TempDir(), "layout")
	WriteOCILayout(t, ldir, "v1", BusyboxSpec(t))
	certDir := filepath.Join(dir, "skopeo-certs")
	os.MkdirAll(certDir, 0o755)
	data, _ := os.ReadFile(caFile)
	os.WriteFile(filepath.Join(certDir, "ca.crt"), data, 0o644)
	ref := reg.Host + "/test/tls:v1"
	Skopeo(t, "copy", "--dest-cert-dir", certDir, "oci:"+ldir+":v1", "docker://"+ref)

	d := StartDaemon(t)
	certsD := filepath.Join(d.Dir, "certs.d")
	cfg, _ := json.Marshal(map[string]any{"certs-dir": certsD})
	os.WriteFile(filepath.Join(d.Dir, "daemon.json"), cfg, 0o600)
	d.Stop()
	d.Start()
	oneLineErr(t, d.Isula("pull", ref), "test/tls:v1", "TLS")
	os.MkdirAll(filepath.Join(certsD, reg.Host), 0o755)
	os.WriteFile(filepath.Join(certsD, reg.Host, "ca.crt"), data, 0o644)
	d.Must("pull", ref)
	if got := d.Must("run", "--rm", ref, "tls"); got != "hello from the image tls" {
		t.Fatalf("run: %q", got)
	}
}
