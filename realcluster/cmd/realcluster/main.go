// Command realcluster runs the upstream Kubernetes control-plane components from one binary:
//
//	realcluster etcd [flags]                 embedded etcd (see `realcluster etcd -h`)
//	realcluster kube-apiserver [flags]       k8s.io/kubernetes/cmd/kube-apiserver
//	realcluster kube-controller-manager ...  k8s.io/kubernetes/cmd/kube-controller-manager
//	realcluster kube-scheduler [flags]       k8s.io/kubernetes/cmd/kube-scheduler
//	realcluster certs --dir DIR              CA, serving and client certificates, service-account keys
//	realcluster version                      the Kubernetes and etcd versions built in
//
// Each subcommand takes exactly the flags of the upstream command; each runs in a process of
// its own (the components keep global state such as feature gates and metrics registries).
package main

import (
	"fmt"
	"os"
	_ "time/tzdata" // time zones for CronJobs

	"github.com/spf13/cobra"
	etcdversion "go.etcd.io/etcd/api/v3/version"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // the JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s etcd|kube-apiserver|kube-controller-manager|kube-scheduler|certs|version [flags]\n",
		os.Args[0])
}

func runCobra(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	switch sub {
	case "etcd":
		os.Exit(runEtcd(args))
	case "kube-apiserver", "apiserver":
		os.Exit(runCobra(apiserver.NewAPIServerCommand(), args))
	case "kube-controller-manager", "controller-manager":
		os.Exit(runCobra(controllermanager.NewControllerManagerCommand(), args))
	case "kube-scheduler", "scheduler":
		os.Exit(runCobra(scheduler.NewSchedulerCommand(), args))
	case "certs":
		os.Exit(runCerts(args))
	case "version", "--version":
		fmt.Printf("kubernetes %s\netcd %s\n", version.Get().GitVersion, etcdversion.Version)
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", sub)
		usage()
		os.Exit(2)
	}
}
