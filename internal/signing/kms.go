package signing

// The sigstore KMS providers, registered by import: awskms://, gcpkms://,
// azurekms:// and hashivault:// key URIs, with the syntax cosign uses.
import (
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)
