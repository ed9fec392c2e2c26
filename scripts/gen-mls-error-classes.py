#!/usr/bin/env python3
"""Generate crates/core/src/mls_error/variants.rs (usage:
`python3 scripts/gen-mls-error-classes.py > crates/core/src/mls_error/variants.rs`): for every error enum of
the vendored openmls (and openmls_traits' CryptoError), a `match` over its
variants that names the most specific failure (`Marker`) the variant and
the error it wraps stand for. Run again when vendor/openmls changes; the
output is reviewed and committed like hand-written code.

Which marker a variant gets is decided from its *name* at generation time
(the first entry of MARKERS contained in it, in priority order), so the
core never looks at an error's text at run time.
"""
import glob, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTIVE = {'extensions-draft', 'virtual-clients-draft', 'js'}
# (needle, Marker variant), most specific first (the order decides).
MARKERS = [
    ('ProposalExpansionError', 'ProposalExpansion'), ('TooDistantInThePast', 'TooDistantInThePast'),
    ('SecretReuseError', 'SecretReuse'), ('TooDistantInTheFuture', 'TooDistantInTheFuture'),
    ('GenerationOutOfBound', 'GenerationOutOfBound'), ('WrongEpoch', 'WrongEpoch'),
    ('NoPastEpochData', 'NoPastEpochData'), ('WrongGroupId', 'WrongGroupId'), ('AeadError', 'AeadError'),
    ('DecryptionFailed', 'DecryptionFailed'), ('InvalidNodeSignature', 'InvalidNodeSignature'),
    ('TrailingBlankNodes', 'TrailingBlankNodes'), ('WrongNodeType', 'WrongNodeType'), ('MissingNodes', 'MissingNodes'),
    ('UnableToDecrypt', 'UnableToDecrypt'), ('InvalidSignature', 'InvalidSignature'),
    ('InvalidMembershipTag', 'InvalidMembershipTag'), ('InvalidLeafNodeSignature', 'InvalidLeafNodeSignature'),
    ('NoMatchingKeyPackage', 'NoMatchingKeyPackage'), ('UnsupportedCiphersuite', 'UnsupportedCiphersuite'),
    ('CiphersuiteSignatureSchemeMismatch', 'CiphersuiteSignatureSchemeMismatch'),
    ('GroupAlreadyExists', 'GroupAlreadyExists'),
    ('MissingEmulationEpochState', 'MissingEmulationEpochState'), ('MissingOperationTree', 'MissingOperationTree'),
    ('EpochIdMismatch', 'EpochIdMismatch'), ('MissingDerivationInfo', 'MissingDerivationInfo'),
    ('VirtualClients', 'VirtualClients'), ('KeyNotFound', 'KeyNotFound'), ('UsageMismatch', 'UsageMismatch'),
    ('PendingCommit', 'PendingCommit'), ('UseAfterEviction', 'UseAfterEviction'), ('GroupStateError', 'GroupState'),
    ('IncompatibleWireFormat', 'IncompatibleWireFormat'),
    ('CannotSelfRemoveWithPureCiphertext', 'CannotSelfRemoveWithPureCiphertext'),
    ('StorageError', 'StorageError'), ('Storage', 'Storage'), ('Codec', 'Codec'),
    ('Malformed', 'Malformed'), ('InvalidCommit', 'InvalidCommit'), ('StageCommitError', 'StageCommit'),
    ('ValidationError', 'Validation'), ('LibraryError', 'Library'),
]

# Wrapped errors whose type name openmls defines twice; these variants wrap
# the other one (extensions' RatchetTreeError, which names no failure).
OPAQUE = {('ExtensionError', 'RatchetTree')}
# Where the twice-defined names that are matched on live.
PREFER = {'RatchetTreeError': '/treesync/'}

def marker(name):
    return next((m for needle, m in MARKERS if needle in name), None)

def cfg_active(attr):
    if attr is None: return True
    feats = re.findall(r'feature\s*=\s*"([^"]+)"', attr)
    if 'test' in attr and not feats: return False
    if attr.strip().startswith('not('): return not all(f in ACTIVE for f in feats)
    if 'any(' in attr: return any(f in ACTIVE for f in feats)
    return all(f in ACTIVE for f in feats) if feats else False

def enums(paths):
    out = {}
    for f in paths:
        t = open(f).read()
        for m in re.finditer(r'((?:#\[[^\]]*\]\s*)*)pub enum (\w+)(<\s*(\w+)\s*>)?\s*\{', t):
            attrs, name, generic = m.group(1), m.group(2), m.group(4)
            cfg = re.search(r'#\[cfg\((.*)\)\]', attrs)
            if not cfg_active(cfg.group(1) if cfg else None): continue
            if not (name.endswith('Error') or name in ('TreeSyncAddLeaf',)): continue
            if name in PREFER and PREFER[name] not in f: continue
            i = m.end(); depth = 1; j = i
            while depth:
                depth += {'{': 1, '}': -1}.get(t[j], 0); j += 1
            body = re.sub(r'//.*', '', t[i:j - 1])
            body = re.sub(r'#\[error\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\]', '', body)
            variants = []
            for v in re.finditer(r'((?:#\[[^\]]*\]\s*)*)(\w+)\s*(\((?:[^()]|\([^()]*\))*\)|\{[^}]*\})?\s*,', body):
                vcfg = re.search(r'#\[cfg\((.*)\)\]', v.group(1))
                if not cfg_active(vcfg.group(1) if vcfg else None): continue
                payload = v.group(3)
                kind, inner = 'unit', None
                if payload and payload.startswith('('):
                    kind = 'tuple'
                    inner = re.sub(r'#\[from\]|\s|,$', '', payload[1:-1]).split('<')[0].split('::')[-1]
                elif payload:
                    kind = 'struct'
                variants.append((v.group(2), kind, inner))
            out[name] = (generic, variants)
    return out

# The errors the core's openmls calls return (`CoreError::from_mls`); a new
# call returning another type fails to compile until it is added here.
ROOTS = ['ConfirmMessageError', 'CreateMessageError', 'ExportGroupInfoError', 'ExportSecretError', 'ExternalCommitBuilderError', 'ExternalCommitBuilderFinalizeError', 'KeyPackageNewError', 'LeafNodeValidationError', 'LeaveGroupError', 'MergePendingCommitError', 'NewGroupError', 'ProposalError', 'RegisterVcEmulationEpochError', 'RemoveProposalError', 'VcExternalCommitJoinError', 'WelcomeError', 'CommitBuilderStageError', 'CreateCommitError', 'MergeCommitError', 'ProcessMessageError', 'ProposeSelfUpdateError', 'CryptoError', 'InvalidExtensionError', 'PskError']

def main():
    paths = glob.glob(os.path.join(ROOT, 'vendor/openmls/src/**/*.rs'), recursive=True)
    paths = sorted(p for p in paths if '/tests/' not in p and not p.endswith('tests.rs') and '/test_utils/' not in p)
    traits = glob.glob(os.path.expanduser('~/.cargo/registry/src/*/openmls_traits-0.6.0/src/types.rs'))
    found = enums(paths + traits)
    # The errors the core's calls return (roots), and every error they wrap.
    # `Error` is tls_codec's, not an openmls enum.
    excluded = {'Error'}
    only, todo = set(), list(ROOTS)
    while todo:
        n = todo.pop()
        if n in only or n not in found or n in excluded: continue
        only.add(n)
        todo.extend(inner for _, kind, inner in found[n][1] if inner)
    names = sorted(n for n in found if n in only)
    out = ['// @generated by scripts/gen-mls-error-classes.py from vendor/openmls; do not edit by hand.',
           '//! For each openmls error enum, the most specific failure its variant and',
           '//! any error it wraps stand for (see mod.rs). Matching is on variants only.',
           '#![allow(unreachable_patterns, unused_variables, clippy::match_single_binding)]', '',
           'use super::{Classify, Marker};', 'use super::imports::*;', 'use openmls::group::ProposalExpansionError;', '']
    for name in names:
        generic, variants = found[name]
        head = f'impl<S> Classify for {name}<S>' if generic else f'impl Classify for {name}'
        out.append(f'{head} {{')
        out.append('    fn marker(&self) -> Option<Marker> {')
        out.append('        match self {')
        variants = [(v, kind, None if (name, v) in OPAQUE else inner) for v, kind, inner in variants]
        for v, kind, inner in variants:
            own = marker(v)
            own_s = f'Some(Marker::{own})' if own else 'None'
            if kind == 'tuple' and inner in found and inner in only:
                out.append(f'            Self::{v}(inner) => Marker::most_specific({own_s}, inner.marker()),')
            elif kind == 'tuple' and inner == 'LibraryError':
                out.append(f'            Self::{v}(_) => Marker::most_specific({own_s}, Some(Marker::Library)),')
            elif kind == 'tuple' and inner == 'ProposalExpansionError':
                out.append(f'            Self::{v}(inner) => Marker::most_specific({own_s}, inner.marker()),')
            elif kind == 'tuple' or (kind == 'tuple' and inner is None):
                out.append(f'            Self::{v}(..) => {own_s},')
            elif kind == 'struct':
                out.append(f'            Self::{v} {{ .. }} => {own_s},')
            else:
                out.append(f'            Self::{v} => {own_s},')
        out.append('            _ => None,')
        out.append('        }')
        out.append('    }')
        wrapping = [v for v, kind, inner in variants if kind == 'tuple' and ((inner in found and inner in only) or inner == 'ProposalExpansionError')]
        if wrapping:
            out.append('')
            out.append('    fn expansion(&self) -> Option<&ProposalExpansionError> {')
            out.append('        match self {')
            for v in wrapping:
                out.append(f'            Self::{v}(inner) => inner.expansion(),')
            out.append('            _ => None,')
            out.append('        }')
            out.append('    }')
        out.append('}')
        out.append('')
    sys.stdout.write('\n'.join(out))

main()
