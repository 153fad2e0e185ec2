package commitlint

// messages is a table of commit messages with the rules commitlint's
// config-conventional fails on them ("!" marks a warning). The same table
// runs through the real commitlint in peer_test.go.
var messages = []struct {
	name string
	msg  string
	want []string
}{
	{"plain feat", "feat: add refund endpoint", nil},
	{"scope", "fix(api): handle empty amount", nil},
	{"breaking bang", "feat(api)!: drop v1 routes", nil},
	{"body and footer", "feat: add refunds\n\nRefunds are partial or full.\n\nCloses #12", nil},
	{"breaking footer", "refactor: rename ledger\n\nBREAKING CHANGE: ledger is now journal", nil},
	{"sentence case", "feat: Add refund endpoint", []string{"subject-case"}},
	{"upper case", "fix: FIX IT", []string{"subject-case"}},
	{"quoted proper noun", "docs: `Eslint` configuration", nil},
	{"full stop", "fix: handle nil pointer.", []string{"subject-full-stop"}},
	{"ellipsis", "fix: handle this...", nil},
	{"unknown type", "feature: add x", []string{"type-enum"}},
	{"upper type", "FEAT: add x", []string{"type-case", "type-enum"}},
	{"no type", "add refund endpoint", []string{"subject-empty", "type-empty"}},
	{"empty subject", "feat: ", []string{"header-trim", "subject-empty"}},
	{"missing space", "feat:add x", []string{"subject-empty", "type-empty"}},
	{"long header", "feat: " + repeat("a", 95), []string{"header-max-length"}},
	{"header exactly 100", "feat: " + repeat("a", 94), nil},
	{"no blank before body", "feat: add x\nbody text here", []string{"!body-leading-blank"}},
	{"no blank before footer", "feat: add x\n\nbody text\nCloses #3", []string{"!footer-leading-blank"}},
	{"long body line", "feat: add x\n\n" + repeat("b", 101), []string{"body-max-line-length"}},
	{"long body url", "feat: add x\n\nsee https://example.com/" + repeat("u", 120), nil},
	{"long footer line", "feat: add x\n\nbody\n\nRefs #1 " + repeat("f", 100), []string{"footer-max-line-length"}},
	{"trailing space", "feat: add x ", []string{"header-trim"}},
	{"leading space", " feat: add x", []string{"header-trim", "subject-empty", "type-empty"}},
	{"merge", "Merge branch 'main' into feature", nil},
	{"merge pr", "Merge pull request #7 from org/branch\n\nfeat: x", nil},
	{"revert by git", "Revert \"feat: add x\"\n\nThis reverts commit 1234567890abcdef.", nil},
	{"conventional revert", "revert: feat: add x\n\nThis reverts commit 1234567.", nil},
	{"fixup", "fixup! feat: add x", nil},
	{"release", "chore(release): 1.2.3", nil},
	{"bare version", "v1.4.0", nil},
	{"comment lines", "feat: add x\n# Please enter the commit message\n", []string{"!body-leading-blank"}},
	{"digit subject", "fix: 404 on refunds", nil},
	{"colon end", "feat:", []string{"subject-empty", "type-empty"}},
	{"weird scope", "feat(a): b (c): d", nil},
	{"unicode upper", "feat: Élan vital", []string{"subject-case"}},
	{"emoji subject", "feat: 🎉 launch", nil},
	{"breaking note lowercase", "feat: x\n\nbreaking change: all gone", nil},
	{"body then refs", "fix: x\n\nthe body\nfixes #1 and #2\nmore", []string{"!footer-leading-blank"}},
	{"url with hash not ref", "docs: x\n\nsee https://example.com/#anchor\nmore body", nil},
	{"windows newlines", "feat: add x\r\n\r\nbody line\r\n", nil},
	{"trailing newlines", "feat: add x\n\n\n", nil},
	{"bang with footer", "feat(api)!: drop v1\n\nBREAKING CHANGE: v1 is gone", nil},
	{"release skip ci", "chore(release): v1.2.3 [skip ci]", nil},
	{"merge tag", "Merge tag 'v1.2.0'", nil},
	{"automatic merge", "Automatic merge from release", nil},
	{"reapply", "Reapply \"feat: x\"", nil},
	{"lowercase brand", "feat: iOS support", nil},
	{"acronym start", "feat: URL parsing", []string{"subject-case"}},
	{"quote start", "feat: 'Quoted' start", nil},
	{"trailers", "fix: x\n\nbody\n\nSigned-off-by: A <a@example.com>\nRefs: #12", []string{"!footer-leading-blank"}},
	{"hash in body", "fix: x\n\nsee issue #12 for details\nmore", nil},
	{"emoji long body", "docs: x\n\n" + repeat("😀", 60), []string{"body-max-line-length"}},
	{"scope with slash", "fix(api/v2): handle x", nil},
	{"empty scope", "fix(): handle x", nil},
	{"type with digits", "feat2: x", []string{"type-enum"}},
	{"subject with colon", "fix: a: b", nil},
	{"tab in header", "fix:\tx", []string{"subject-empty", "type-empty"}},
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
