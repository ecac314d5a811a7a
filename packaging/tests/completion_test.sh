#!/usr/bin/env bash
# ctest packaging_completion: the installed bash and zsh completion of mqctl (generated at
# build time by `mqctl completion bash|zsh`) complete the installed binary's subcommands,
# options and option choices, and match what the installed binary generates now.
# usage: completion_test.sh PREFIX   (the tree of packaging_install)
set -u
prefix=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export PATH=$prefix/bin:$PATH

bash_file=$prefix/share/bash-completion/completions/mqctl
bash -n "$bash_file" || fail "bash syntax: $bash_file"
mqctl completion bash | cmp -s - "$bash_file" || fail "$bash_file differs from: mqctl completion bash"
complete() { :; }  # the file registers itself; not needed here
# shellcheck source=/dev/null
source "$bash_file"
unset -f complete
expect() {  # expect "word ..." -- completion of the words, the last one being completed
    local want=$1
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _mqctl
    local got=" ${COMPREPLY[*]} "
    for w in $want; do
        [[ $got == *" $w "* ]] || fail "bash: '$*' offers '${COMPREPLY[*]}', missing '$w'"
    done
}
expect "queue" mqctl qu
expect "create list show update delete purge" mqctl queue ""
expect "migrate" mqctl db m
expect "list" mqctl -t acme queue l           # an option value is not a subcommand
expect "--partitions --tenant --output" mqctl queue create --
expect "table json yaml" mqctl -o ""
expect "use-context get-contexts" mqctl config ""
expect "--filename" mqctl publish --f
expect "--context --mqconfig" mqctl dlq list --
expect "aes-256-gcm" mqctl queue create --encryption a
expect "" mqctl queue create --nonexistent-option ""  # an unknown option: no error
echo "bash: ok"

zsh_file=$prefix/share/zsh/site-functions/_mqctl
if ! command -v zsh >/dev/null 2>&1; then
    echo "zsh not installed (apt-get install zsh): zsh completion NOT checked"
    exit 77
fi
zsh -n "$zsh_file" || fail "zsh syntax: $zsh_file"
mqctl completion zsh | cmp -s - "$zsh_file" || fail "$zsh_file differs from: mqctl completion zsh"
# _describe/compadd stubbed to print what completion would offer.
got=$(zsh -f -c '
    _describe() { local a=${@[-1]}; print -l -- ${(P)a}; }
    compadd() { shift; print -l -- "$@"; }
    _files() { print FILES; }
    words=(mqctl queue ""); CURRENT=3; PREFIX=""; source "$1"
    words=(mqctl sub create --); CURRENT=4; PREFIX=--; source "$1"
    words=(mqctl -o ""); CURRENT=3; PREFIX=""; source "$1"
    words=(mqctl publish --filename ""); CURRENT=4; PREFIX=""; source "$1"' zsh "$zsh_file")
for want in "create:Create a queue" "purge:" "--tenant:Tenant to act for" "table" "json" "yaml" "FILES"; do
    case $got in *"$want"*) ;; *) fail "zsh: completion lacks '$want'; got: $got" ;; esac
done
echo "zsh: ok"
