# bash completion for crstream(1) and criu-image-streamer(1)
#
# Installed as bash-completion's completions/crstream (and a copy named
# criu-image-streamer), loaded when the command is first completed. The
# commands, the options (and which take an argument) and the codec names
# are read from the crstream being completed (`crstream --help`, `crstream
# COMMAND --help`, `crstream --version`), so they stay in step with it.

# _crstream_help_options CRSTREAM [COMMAND]: one line per option of the
# command's --help: "OPTION 1" if it takes an argument, "OPTION 0" if not.
# An option line starts with spaces and a dash; its first column (up to two
# spaces) names the option and its argument: "-d, --dir DIR".
_crstream_help_options()
{
	"$@" --help 2>/dev/null | sed -nE 's/^ +(-[^ ]([^ ]| [^ ])*).*/\1/p' |
		while read -r term; do
			local arg=0 word
			[[ $term =~ [[:space:]][^-[:space:],][^[:space:]]*$ ]] && arg=1
			for word in $term; do
				word=${word%,}
				[[ $word == -* ]] && printf '%s %s\n' "$word" "$arg"
			done
		done
}

# _crstream_commands CRSTREAM: the commands listed in `crstream --help`.
_crstream_commands()
{
	"$1" --help 2>/dev/null | awk '
		/^[^ ].*:$/ { in_commands = tolower($0) ~ /commands/; next }
		in_commands && /^  [a-z]/ { print $1 }'
}

# _crstream_codecs CRSTREAM: "none lz4 ..." from `crstream --version`.
_crstream_codecs()
{
	"$1" --version 2>/dev/null | sed -n 's/^codecs: *//p' | tr -d ','
}

_crstream_pids()
{
	local p
	for p in /proc/[0-9]*; do
		printf '%s\n' "${p#/proc/}"
	done
}

_crstream()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local prog=${COMP_WORDS[0]} cmd="" first=1
	COMPREPLY=()
	# --opt=value: bash splits it at the '='.
	if [[ $cur == = ]]; then
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		cur=""
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	if [[ ${prog##*/} == criu-image-streamer ]]; then
		cmd=capture
		first=0
	elif ((COMP_CWORD == 1)); then
		mapfile -t COMPREPLY < <(compgen -W "$(_crstream_commands "$prog") --help --version" -- "$cur")
		return
	else
		cmd=${COMP_WORDS[1]}
	fi

	# extract --path reads a stored checkpoint: its own options.
	local -a help_args=("$cmd")
	local stored=0
	if [[ $cmd == extract ]] && ((first)); then
		local w
		for w in "${COMP_WORDS[@]:2}"; do
			[[ $w == --path || $w == --path=* || $w == -p ]] && stored=1
		done
		((stored)) && help_args+=(--path x)
	fi

	# The option being given an argument, if any.
	local line opt takes_arg=0
	local -a options=()
	if ((first)); then
		mapfile -t options < <(_crstream_help_options "$prog" "${help_args[@]}")
	else
		mapfile -t options < <(_crstream_help_options "$prog")
	fi
	for line in "${options[@]}"; do
		[[ ${line% *} == "$prev" ]] && takes_arg=${line#* } && opt=$prev
	done
	if ((takes_arg)); then
		case $opt in
		-c | --compression)
			mapfile -t COMPREPLY < <(compgen -W "$(_crstream_codecs "$prog")" -- "$cur") ;;
		-d | --dir | -D | --images-dir | --policy-dir)
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
		-p | --path)
			if [[ $cmd == capture || $cmd == serve || $cmd == extract ]] && ((!stored)); then
				return # --progress-fd: a file descriptor
			fi
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
		--pid-file | --log | --db | -s | --socket | --daemon | -i | --identity | --trusted-key | \
			--recipients-file | --sign-key | -o | --output)
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
		esac
		return
	fi

	if [[ $cur == -* ]]; then
		local -a names=()
		for line in "${options[@]}"; do
			names+=("${line% *}")
		done
		mapfile -t COMPREPLY < <(compgen -W "${names[*]}" -- "$cur")
		return
	fi

	# Arguments that are not options.
	case $cmd in
	dump)
		local words
		words=$(_crstream_pids)
		((COMP_CWORD == 2)) && words+=" job process"
		mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur") ;;
	manage)
		mapfile -t COMPREPLY < <(compgen -W "$(_crstream_pids)" -- "$cur") ;;
	restore | inspect | rm | ls)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
	config)
		((COMP_CWORD == 2)) && mapfile -t COMPREPLY < <(compgen -W "show" -- "$cur") ;;
	capture | serve | extract)
		mapfile -t COMPREPLY < <(compgen -W "capture serve extract" -- "$cur") ;;
	esac
} &&
	complete -F _crstream crstream criu-image-streamer
