package options

import "github.com/spf13/pflag"

// Sign are the flags of `gantry sign`.
type Sign struct {
	Key         string
	Annotations []string
	Attest      string
	Type        string
	Insecure    bool
	Output
}

// AddFlags registers the sign flags.
func (o *Sign) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Key, "key", "", "cosign private key file or KMS URI (awskms://, gcpkms://, azurekms://, hashivault://); default STATE_DIR/keys/cosign.key, generated on first use")
	fs.StringArrayVarP(&o.Annotations, "annotation", "a", nil, "key=value added to the signed payload's optional section (repeatable)")
	fs.StringVar(&o.Attest, "attest", "", "also attest this predicate JSON file (or a whole in-toto statement) about the image")
	fs.StringVar(&o.Type, "type", "", "predicate type of --attest: slsaprovenance1, cyclonedx or a URI")
	fs.BoolVar(&o.Insecure, "insecure", false, "allow plain HTTP to the registry (always on for localhost)")
	o.Output.AddFlags(fs)
}
