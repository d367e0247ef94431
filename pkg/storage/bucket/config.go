// Package bucket builds the one object-store client every Canopy component
// shares, from one configuration: the local filesystem (the default, under
// <data-dir>/bucket) or S3 (and so MinIO, Ceph, R2…), GCS, Azure or Swift,
// through thanos-io/objstore.
package bucket

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/gcs"
	"github.com/thanos-io/objstore/providers/s3"
	"github.com/thanos-io/objstore/providers/swift"
)

// Backends.
const (
	Filesystem = "filesystem"
	S3         = "s3"
	GCS        = "gcs"
	Azure      = "azure"
	Swift      = "swift"
)

// Backends lists the supported values of -bucket.backend.
var Backends = []string{Filesystem, S3, GCS, Azure, Swift}

// Config selects and configures the object store. The provider sections are
// thanos-io/objstore's own configuration structs, so every option they have
// can be set in YAML; the common ones also have flags.
type Config struct {
	Backend    string           `yaml:"backend"`
	Filesystem FilesystemConfig `yaml:"filesystem"`
	S3         s3.Config        `yaml:"s3"`
	GCS        gcs.Config       `yaml:"gcs"`
	Azure      azure.Config     `yaml:"azure"`
	Swift      swift.Config     `yaml:"swift"`
}

// FilesystemConfig configures the filesystem backend.
type FilesystemConfig struct {
	// Dir is the bucket's root directory; empty means <data-dir>/bucket.
	Dir string `yaml:"dir"`
}

// RegisterFlags registers the -bucket.* flags and the providers' defaults.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.S3 = s3.DefaultConfig
	c.GCS = gcs.DefaultConfig
	c.Azure = azure.DefaultConfig
	c.Swift = swift.DefaultConfig

	f.StringVar(&c.Backend, "bucket.backend", Filesystem, "Object store holding blocks, indexes and rules: "+strings.Join(Backends, ", ")+".")
	f.StringVar(&c.Filesystem.Dir, "bucket.filesystem.dir", "", "Root directory of the filesystem bucket. Empty: <data-dir>/bucket.")

	f.StringVar(&c.S3.Endpoint, "bucket.s3.endpoint", "", "S3 endpoint host[:port] without scheme, e.g. s3.eu-west-1.amazonaws.com or 127.0.0.1:9000 for MinIO.")
	f.StringVar(&c.S3.Bucket, "bucket.s3.bucket-name", "", "S3 bucket name.")
	f.StringVar(&c.S3.Region, "bucket.s3.region", "", "S3 region. Empty: discovered from the endpoint.")
	f.StringVar(&c.S3.AccessKey, "bucket.s3.access-key-id", "", "S3 access key ID. Empty: the AWS credential chain (environment, shared files, instance role).")
	f.StringVar(&c.S3.SecretKey, "bucket.s3.secret-access-key", "", "S3 secret access key. A flag shows in the process list: prefer bucket.s3.secret_key in -config.file (with -config.expand-env to take it from the environment), or leave both keys empty to use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or the instance role.")
	f.BoolVar(&c.S3.Insecure, "bucket.s3.insecure", false, "Connect to the S3 endpoint over plain HTTP.")

	f.StringVar(&c.GCS.Bucket, "bucket.gcs.bucket-name", "", "GCS bucket name.")
	f.StringVar(&c.GCS.ServiceAccount, "bucket.gcs.service-account", "", "GCS service account JSON. Empty: Google's application default credentials.")

	f.StringVar(&c.Azure.StorageAccountName, "bucket.azure.account-name", "", "Azure storage account name.")
	f.StringVar(&c.Azure.StorageAccountKey, "bucket.azure.account-key", "", "Azure storage account key. Empty: managed identity or workload identity.")
	f.StringVar(&c.Azure.ContainerName, "bucket.azure.container-name", "", "Azure blob container name.")
	f.StringVar(&c.Azure.Endpoint, "bucket.azure.endpoint-suffix", c.Azure.Endpoint, "Azure storage endpoint suffix.")

	f.StringVar(&c.Swift.AuthUrl, "bucket.swift.auth-url", "", "OpenStack Swift (Keystone) authentication URL.")
	f.StringVar(&c.Swift.Username, "bucket.swift.username", "", "OpenStack Swift user name.")
	f.StringVar(&c.Swift.Password, "bucket.swift.password", "", "OpenStack Swift password.")
	f.StringVar(&c.Swift.ProjectName, "bucket.swift.project-name", "", "OpenStack Swift project (tenant) name.")
	f.StringVar(&c.Swift.RegionName, "bucket.swift.region-name", "", "OpenStack Swift region.")
	f.StringVar(&c.Swift.ContainerName, "bucket.swift.container-name", "", "OpenStack Swift container name.")
}

// Validate checks that the selected backend has what it needs.
func (c *Config) Validate() error {
	switch c.Backend {
	case Filesystem:
		return nil
	case S3:
		if c.S3.Bucket == "" || c.S3.Endpoint == "" {
			return errors.New("-bucket.backend=s3 needs -bucket.s3.endpoint and -bucket.s3.bucket-name")
		}
		if strings.Contains(c.S3.Endpoint, "://") {
			return fmt.Errorf("-bucket.s3.endpoint %q must not have a scheme; use -bucket.s3.insecure for plain HTTP", c.S3.Endpoint)
		}
	case GCS:
		if c.GCS.Bucket == "" {
			return errors.New("-bucket.backend=gcs needs -bucket.gcs.bucket-name")
		}
	case Azure:
		if c.Azure.StorageAccountName == "" || c.Azure.ContainerName == "" {
			return errors.New("-bucket.backend=azure needs -bucket.azure.account-name and -bucket.azure.container-name")
		}
	case Swift:
		if c.Swift.AuthUrl == "" || c.Swift.ContainerName == "" {
			return errors.New("-bucket.backend=swift needs -bucket.swift.auth-url and -bucket.swift.container-name")
		}
	default:
		return fmt.Errorf("unknown -bucket.backend %q: valid backends are %s", c.Backend, strings.Join(Backends, ", "))
	}
	return nil
}

// Redacted returns a copy safe to show on /config: credentials are masked.
func (c Config) Redacted() Config {
	mask := func(s *string) {
		if *s != "" {
			*s = "********"
		}
	}
	mask(&c.S3.SecretKey)
	mask(&c.S3.SessionToken)
	mask(&c.GCS.ServiceAccount)
	mask(&c.Azure.StorageAccountKey)
	mask(&c.Azure.StorageConnectionString)
	mask(&c.Azure.ClientSecret)
	mask(&c.Swift.Password)
	mask(&c.Swift.ApplicationCredentialSecret)
	return c
}
