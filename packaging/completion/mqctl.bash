# bash completion for mqctl (installed as share/bash-completion/completions/mqctl).
#
# It reads the command tree from the installed binary: `mqctl [subcommand ...] --help` lists
# the Subcommands and Options of each level (CLI11), so completion follows the binary without
# a copy of the tree here. Global options (the top level's) are valid at every level.

# Sections of `mqctl ... --help`: subcommand names, option flags, the line of one option.
_mqctl_subcommands() {
    "$@" --help 2>/dev/null |
        awk '/^Subcommands:/ {s = 1; next} /^[^ ]/ {s = 0} s && /^  [a-z]/ {print $1}'
}

_mqctl_options() {
    "$@" --help 2>/dev/null |
        awk '/^Options:/ {s = 1; next} /^[^ ]/ {s = 0}
             s && /^  -/ {n = split($1, f, ",");
                          for (i = 1; i <= n; i++) {sub(/[{].*/, "", f[i]); print f[i]}}'
}

_mqctl_option_line() {  # $1 option; rest: command
    local opt=$1
    shift
    "$@" --help 2>/dev/null |
        awk -v o="$opt" '/^  -/ {n = split($1, f, ",");
                                 for (i = 1; i <= n; i++) {sub(/[{].*/, "", f[i]); if (f[i] == o) {print; exit}}}'
}

_mqctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    local cmd=${COMP_WORDS[0]} i w subs line
    local -a path=()
    COMPREPLY=()

    # The subcommand path typed so far; option values and arguments are not subcommands.
    subs=$(_mqctl_subcommands "$cmd")
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        [[ $w == -* ]] && continue
        if grep -qxF -- "$w" <<<"$subs"; then
            path+=("$w")
            subs=$(_mqctl_subcommands "$cmd" "${path[@]}")
        fi
    done

    # The value of an option: its choices ({table,json}), a file name (an option whose help
    # mentions a file), or nothing to offer.
    if [[ $prev == -* ]]; then
        line=$(_mqctl_option_line "$prev" "$cmd" "${path[@]}")
        [[ -z $line ]] && line=$(_mqctl_option_line "$prev" "$cmd")
        if [[ $line =~ ^\ \ [^\ ]+\ [A-Z]+ ]]; then
            if [[ $line =~ ^\ \ [^\ ]+\ [A-Z]+:\{([^}]*)\} ]]; then
                mapfile -t COMPREPLY < <(compgen -W "${BASH_REMATCH[1]//,/ }" -- "$cur")
            elif [[ ${line,,} == *file* || ${line,,} == *keyring* ]]; then
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                compopt -o filenames 2>/dev/null
            fi
            return 0
        fi
    fi

    if [[ $cur == -* ]]; then
        local opts
        opts=$(_mqctl_options "$cmd" "${path[@]}")
        ((${#path[@]})) && opts+=$'\n'$(_mqctl_options "$cmd")
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    elif [[ -n $subs ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
    fi
    return 0
}

complete -F _mqctl mqctl
