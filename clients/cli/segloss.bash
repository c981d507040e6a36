# bash completion for segloss(1): its commands, the challenge verbs, each command's flags, the
# values of --compress, and file names where a file is expected. Installed by make install as
# PREFIX/share/bash-completion/completions/segloss; or: source clients/cli/segloss.bash.
# Plain bash (no bash-completion helpers needed). tests/clients/test_completion.py checks it
# against segloss --help and the flags each command accepts, so the two cannot drift.

# _segloss: fills COMPREPLY for the word COMP_WORDS[COMP_CWORD] of a segloss command line.
_segloss()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} cmd opts
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W "score compare health challenge submit leaderboard
            -h --help --version" -- "$cur")
        return 0
    fi
    cmd=${COMP_WORDS[1]}
    # the values of the flags that take one
    case $prev in
    --pred | --target | --spec | --junit | --html | --baseline | --token-file | --ids | -o)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    --compress)
        mapfile -t COMPREPLY < <(compgen -W "auto gzip zstd none" -- "$cur")
        return 0
        ;;
    --url | --loss | --metric | --set | --shape | --batch-size | --gate | --report-worst | \
        --parallel | --retries | --timeout | --resamples | --seed | --worst | --token | --note)
        return 0
        ;;
    --wait)
        # health --wait S; challenge rescore --wait takes none
        [[ $cmd == health ]] && return 0
        ;;
    esac
    case $cmd in
    score)
        opts="--url --pred --target --loss --metric --spec --set --shape --batch-size --compress
            --gate --json --junit --html --report-worst --no-per-image --no-progress --parallel
            --retries --timeout --quiet --baseline --help"
        ;;
    health) opts="--url --ready --wait --timeout --help" ;;
    compare) opts="--gate --json --junit --resamples --seed --worst --help" ;;
    challenge)
        if ((COMP_CWORD == 2)); then
            mapfile -t COMPREPLY < <(compgen -W "configure reference add revoke participants
                rescore export" -- "$cur")
            return 0
        fi
        opts="--url --token --token-file --shape --ids --compress --json --wait -o --retries
            --timeout --quiet --parallel --help"
        ;;
    submit)
        opts="--url --token --token-file --shape --ids --note --compress --json --retries
            --timeout --quiet --parallel --help"
        ;;
    leaderboard)
        opts="--url --token --token-file --private --csv --json -o --retries --timeout --quiet
            --help"
        ;;
    *) return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    elif [[ $cmd == compare || $cmd == submit || $cmd == challenge ]]; then
        # JSON outputs to compare, a SOURCE, a CONFIG.json
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
}
complete -o filenames -F _segloss segloss
