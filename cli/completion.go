package cli

import (
	"fmt"
	"strings"
)

var completionCommand = &command{
	name:    "completion",
	args:    "bash|zsh|fish",
	summary: "print a shell completion script",
	run: func(e *env, args []string) error {
		fs := e.flags("completion")
		pos, err := e.parse(fs, "bash|zsh|fish", args, 1, 1)
		if err != nil {
			return err
		}
		script, ok := completionScripts[pos[0]]
		if !ok {
			return usageError{err: fmt.Errorf("unknown shell %q: want bash, zsh or fish", pos[0]), usage: commandUsage(fs, "bash|zsh|fish")}
		}
		r := strings.NewReplacer("@COMMANDS@", commandNames(commands), "@CONFIG@", commandNames(configCommands))
		fmt.Fprint(e.stdout, r.Replace(script))
		return nil
	},
}

func commandNames(cmds []*command) string {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	return strings.Join(names, " ")
}

// Configuration names complete from "netext config list --quiet", which
// prints nothing when the daemon cannot be reached.
var completionScripts = map[string]string{
	"bash": `# bash completion for netext; load with: source <(netext completion bash)
_netext() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local cmd=${COMP_WORDS[1]}
	if [[ $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=($(compgen -W "@COMMANDS@" -- "$cur"))
		return
	fi
	case $cmd in
	config)
		if [[ $COMP_CWORD -eq 2 ]]; then
			COMPREPLY=($(compgen -W "@CONFIG@" -- "$cur"))
		elif [[ $COMP_CWORD -eq 3 && ${COMP_WORDS[2]} == import ]]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		elif [[ $COMP_CWORD -eq 3 && ${COMP_WORDS[2]} != add ]]; then
			COMPREPLY=($(compgen -W "$(netext config list --quiet 2>/dev/null)" -- "$cur"))
		fi ;;
	start|stop|status|message)
		[[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "$(netext config list --quiet 2>/dev/null)" -- "$cur")) ;;
	completion)
		COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
	help)
		COMPREPLY=($(compgen -W "@COMMANDS@" -- "$cur")) ;;
	esac
}
complete -F _netext netext
`,
	"zsh": `#compdef netext
# zsh completion for netext; load with: source <(netext completion zsh)
_netext() {
	local -a names
	if (( CURRENT == 2 )); then
		compadd -- @COMMANDS@
		return
	fi
	case ${words[2]} in
	config)
		if (( CURRENT == 3 )); then
			compadd -- @CONFIG@
		elif (( CURRENT == 4 )) && [[ ${words[3]} == import ]]; then
			_files
		elif (( CURRENT == 4 )) && [[ ${words[3]} != add ]]; then
			names=(${(f)"$(netext config list --quiet 2>/dev/null)"})
			compadd -- $names
		fi ;;
	start|stop|status|message)
		if (( CURRENT == 3 )); then
			names=(${(f)"$(netext config list --quiet 2>/dev/null)"})
			compadd -- $names
		fi ;;
	completion) compadd -- bash zsh fish ;;
	help) compadd -- @COMMANDS@ ;;
	esac
}
compdef _netext netext
`,
	"fish": `# fish completion for netext; load with: netext completion fish | source
complete -c netext -f
complete -c netext -n __fish_use_subcommand -a "@COMMANDS@"
complete -c netext -n "__fish_seen_subcommand_from config; and not __fish_seen_subcommand_from @CONFIG@" -a "@CONFIG@"
complete -c netext -n "__fish_seen_subcommand_from start stop status message show edit remove enable disable" -a "(netext config list --quiet 2>/dev/null)"
complete -c netext -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"
complete -c netext -n "__fish_seen_subcommand_from import" -F
complete -c netext -l json -d "print JSON instead of text"
`,
}
