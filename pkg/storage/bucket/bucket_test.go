package bucket

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func defaults() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return c
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(*Config)
		want string
	}{
		"filesystem default": {set: func(*Config) {}},
		"unknown backend":    {set: func(c *Config) { c.Backend = "ftp" }, want: `unknown -bucket.backend "ftp"`},
		"s3 without bucket":  {set: func(c *Config) { c.Backend = S3; c.S3.Endpoint = "x:9000" }, want: "-bucket.s3.bucket-name"},
		"s3 with scheme": {set: func(c *Config) {
			c.Backend = S3
			c.S3.Endpoint = "http://x:9000"
			c.S3.Bucket = "b"
		}, want: "must not have a scheme"},
		"s3 ok":                {set: func(c *Config) { c.Backend = S3; c.S3.Endpoint = "x:9000"; c.S3.Bucket = "b" }},
		"gcs without bucket":   {set: func(c *Config) { c.Backend = GCS }, want: "-bucket.gcs.bucket-name"},
		"azure without names":  {set: func(c *Config) { c.Backend = Azure }, want: "-bucket.azure.account-name"},
		"swift without auth":   {set: func(c *Config) { c.Backend = Swift }, want: "-bucket.swift.auth-url"},
		"swift with container": {set: func(c *Config) { c.Backend = Swift; c.Swift.AuthUrl = "http://k"; c.Swift.ContainerName = "c" }},
	} {
		t.Run(name, func(t *testing.T) {
			c := defaults()
			tc.set(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRedacted(t *testing.T) {
	c := defaults()
	c.S3.SecretKey = "s3cr3t"
	c.Azure.StorageAccountKey = "k3y"
	c.Swift.Password = "pw"
	r := c.Redacted()
	for _, v := range []string{r.S3.SecretKey, r.Azure.StorageAccountKey, r.Swift.Password} {
		require.Equal(t, "********", v)
	}
	require.Equal(t, "s3cr3t", c.S3.SecretKey, "the original is untouched")
	require.Empty(t, r.GCS.ServiceAccount, "empty stays empty")
}

func TestFilesystemUnderDataDir(t *testing.T) {
	dataDir := t.TempDir()
	reg := prometheus.NewRegistry()
	bkt, err := NewClient(context.Background(), defaults(), dataDir, "test", log.NewNopLogger(), reg)
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(context.Background(), "t/metrics/x", strings.NewReader("hello")))
	b, err := os.ReadFile(filepath.Join(dataDir, "bucket", "t", "metrics", "x"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	require.Contains(t, names, "canopy_objstore_bucket_operations_total")
	require.NoError(t, bkt.Close())
}
