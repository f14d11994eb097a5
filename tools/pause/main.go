// Command pause is the first process of every pod sandbox on the real test node: it holds the
// pod's namespaces, reaps the orphans the kernel hands to PID 1, and exits 0 on SIGINT or SIGTERM
// (the kubelet's stop). A pause that ignored SIGTERM would make every pod deletion wait for the
// kill timeout.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child; one SIGCHLD may stand for several.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
