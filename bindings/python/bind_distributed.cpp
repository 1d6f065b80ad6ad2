// Process groups, data-parallel training and federated averaging.
//
// Every call that talks to other ranks releases the GIL, so that a Python thread can run the other ranks of a
// test group in the same process. TrainerOptions::gradient_hook stays C++-only: data-parallel training installs
// ProcessGroup::gradient_hook itself.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/distributed.hpp"

namespace lepton::python {
namespace {

/// Checks that `values` is a writeable, C-contiguous 1-D or n-D numpy array of `T`, so that a collective can
/// write its result into the caller's buffer.
template <class T>
py::array_t<T> writeable_array(const py::object& values, const char* dtype_name) {
  if (!py::isinstance<py::array>(values)) {
    throw py::type_error(fmt::format("values: expected a numpy array of {}, got {}", dtype_name,
                                     py::str(py::type::of(values).attr("__name__")).cast<std::string>()));
  }
  const auto array = py::reinterpret_borrow<py::array>(values);
  if (!py::isinstance<py::array_t<T>>(array) || !array.dtype().is(py::dtype::of<T>())) {
    throw py::type_error(fmt::format("values: expected dtype {}, got {}; convert with values.astype(numpy.{})",
                                     dtype_name, py::str(array.dtype()).cast<std::string>(), dtype_name));
  }
  if (!(array.flags() & py::array::c_style)) {
    throw py::value_error("values: expected a C-contiguous array, because the collective writes in place; "
                          "pass numpy.ascontiguousarray(values) and keep that array");
  }
  if (!array.writeable()) {
    throw py::value_error("values: the array is read-only, but the collective writes its result into it; pass a "
                          "writeable copy");
  }
  return py::reinterpret_borrow<py::array_t<T>>(array);
}

template <class T>
void all_reduce_sum_in_place(ProcessGroup& group, const py::object& values, const char* dtype_name) {
  auto array = writeable_array<T>(values, dtype_name);
  T* data = array.mutable_data();
  const auto count = static_cast<std::size_t>(array.size());
  py::gil_scoped_release release;
  group.all_reduce_sum(data, count);
}

void register_options(py::module_& m) {
  py::class_<DistributedOptions>(m, "DistributedOptions",
                                 "Settings with which one process joins its group. The with_* methods set fields "
                                 "and return the same object.")
      .def(py::init([](const std::string& master_addr, int master_port, int world_size, int rank,
                       double timeout_seconds, bool rank0_hosts_store, std::size_t bucket_bytes) {
             DistributedOptions options;
             options.master_addr = master_addr;
             options.master_port = master_port;
             options.world_size = world_size;
             options.rank = rank;
             options.timeout_seconds = timeout_seconds;
             options.rank0_hosts_store = rank0_hosts_store;
             options.bucket_bytes = bucket_bytes;
             return options;
           }),
           py::arg("master_addr") = "127.0.0.1", py::arg("master_port") = 29500, py::arg("world_size") = 1,
           py::arg("rank") = 0, py::arg("timeout_seconds") = 60.0, py::arg("rank0_hosts_store") = true,
           py::arg("bucket_bytes") = std::size_t{1} << 20)
      .def_readwrite("master_addr", &DistributedOptions::master_addr, "Host of the TCPStore.")
      .def_readwrite("master_port", &DistributedOptions::master_port, "Port of the TCPStore, 1..65535.")
      .def_readwrite("world_size", &DistributedOptions::world_size, "Processes in the group, >= 1.")
      .def_readwrite("rank", &DistributedOptions::rank, "This process, in [0, world_size).")
      .def_readwrite("timeout_seconds", &DistributedOptions::timeout_seconds,
                     "Seconds that the rendezvous and every collective may take before DistributedError.")
      .def_readwrite("rank0_hosts_store", &DistributedOptions::rank0_hosts_store,
                     "True: rank 0 serves the TCPStore. False: a launcher serves it and every rank is a client.")
      .def_readwrite("bucket_bytes", &DistributedOptions::bucket_bytes, "All-reduce bucket size, bytes.")
      .def(
          "with_master",
          [](py::object self, const std::string& address, int port) {
            self.cast<DistributedOptions&>().with_master(address, port);
            return self;
          },
          py::arg("address"), py::arg("port"), "Set master_addr and master_port; return this object.")
      .def(
          "with_world",
          [](py::object self, int size, int rank) {
            self.cast<DistributedOptions&>().with_world(size, rank);
            return self;
          },
          py::arg("size"), py::arg("rank"), "Set world_size and rank; return this object.")
      .def(
          "with_timeout",
          [](py::object self, double seconds) {
            self.cast<DistributedOptions&>().with_timeout(seconds);
            return self;
          },
          py::arg("seconds"), "Set timeout_seconds; return this object.")
      .def(
          "with_bucket_bytes",
          [](py::object self, std::size_t bytes) {
            self.cast<DistributedOptions&>().with_bucket_bytes(bytes);
            return self;
          },
          py::arg("bytes"), "Set bucket_bytes; return this object.")
      .def(
          "with_external_store",
          [](py::object self, bool external) {
            self.cast<DistributedOptions&>().with_external_store(external);
            return self;
          },
          py::arg("external"), "Set rank0_hosts_store to not external; return this object.")
      .def_static("from_environment", &DistributedOptions::from_environment,
                  "Read MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and LEPTON_DIST_TIMEOUT (seconds), as torchrun "
                  "sets them. Missing variables keep the defaults; a malformed one raises InvalidArgument.")
      .def("validate", &DistributedOptions::validate, "Raise InvalidArgument naming the first field out of range.");
}

void register_process_group(py::module_& m) {
  py::class_<CommunicationStats>(m, "CommunicationStats",
                                 "Traffic of one process since it joined: what this rank handed to collectives.")
      .def_readonly("all_reduce_calls", &CommunicationStats::all_reduce_calls, "Buckets all-reduced.")
      .def_readonly("gradient_steps", &CommunicationStats::gradient_steps, "Gradient hooks run.")
      .def_readonly("payload_bytes", &CommunicationStats::payload_bytes, "Bytes handed to all-reduce and broadcast.")
      .def_readonly("seconds", &CommunicationStats::seconds, "Wall time inside collectives.");

  py::class_<ProcessGroup>(m, "ProcessGroup",
                           "A joined process group over c10d's Gloo backend. Its connections close when the object "
                           "is garbage-collected. Collectives release the GIL.")
      .def_static(
          "join",
          [](const DistributedOptions& options) {
            py::gil_scoped_release release;
            return ProcessGroup::join(options);
          },
          py::arg("options"),
          "Validate options, meet the other ranks at the TCPStore and connect Gloo. Raises DistributedError when "
          "the port is in use, ranks disagree, a rank number is taken twice, or not every rank arrives within "
          "options.timeout_seconds.")
      .def_property_readonly("rank", &ProcessGroup::rank, "Rank of this process, in [0, world_size).")
      .def_property_readonly("world_size", &ProcessGroup::world_size, "Number of ranks in the group.")
      .def_property_readonly("options", &ProcessGroup::options, "Options the group was joined with.")
      .def(
          "all_reduce_sum",
          [](ProcessGroup& self, const py::object& values) {
            const auto array = py::isinstance<py::array>(values) ? py::reinterpret_borrow<py::array>(values) : py::array();
            if (array && array.dtype().is(py::dtype::of<double>())) {
              all_reduce_sum_in_place<double>(self, values, "float64");
            } else if (array && array.dtype().is(py::dtype::of<std::int64_t>())) {
              all_reduce_sum_in_place<std::int64_t>(self, values, "int64");
            } else {
              all_reduce_sum_in_place<float>(self, values, "float32");
            }
          },
          py::arg("values"),
          "Replace values (a writeable C-contiguous float32, float64 or int64 array) by their element-wise sum "
          "over all ranks.")
      .def(
          "all_reduce_mean",
          [](ProcessGroup& self, const py::object& values) {
            auto array = writeable_array<float>(values, "float32");
            float* data = array.mutable_data();
            const auto count = static_cast<std::size_t>(array.size());
            py::gil_scoped_release release;
            self.all_reduce_mean(data, count);
          },
          py::arg("values"), "Replace values (a writeable C-contiguous float32 array) by their mean over all ranks.")
      .def(
          "broadcast",
          [](ProcessGroup& self, const py::object& values, int root) {
            auto array = writeable_array<float>(values, "float32");
            float* data = array.mutable_data();
            const auto count = static_cast<std::size_t>(array.size());
            py::gil_scoped_release release;
            self.broadcast(data, count, root);
          },
          py::arg("values"), py::arg("root"),
          "Copy values (a writeable C-contiguous float32 array) of rank root into every rank's array.")
      .def(
          "broadcast_bytes",
          [](ProcessGroup& self, const py::bytes& data, int root) {
            const std::string input(data);
            std::string output;
            {
              py::gil_scoped_release release;
              output = self.broadcast_bytes(input, root);
            }
            return py::bytes(output);
          },
          py::arg("data"), py::arg("root"),
          "Return rank root's bytes on every rank, through the TCPStore; meant for small payloads.")
      .def(
          "all_gather_bytes",
          [](ProcessGroup& self, const py::bytes& data) {
            const std::string input(data);
            std::vector<std::string> gathered;
            {
              py::gil_scoped_release release;
              gathered = self.all_gather_bytes(input);
            }
            py::list result;
            for (const std::string& item : gathered) result.append(py::bytes(item));
            return result;
          },
          py::arg("data"), "Return every rank's bytes, in rank order, through the TCPStore.")
      .def("barrier", &ProcessGroup::barrier, py::call_guard<py::gil_scoped_release>(),
           "Return once every rank has called it; raise DistributedError at the timeout.")
      .def("stats", &ProcessGroup::stats, "Return this rank's CommunicationStats.");
  // NOTE: ProcessGroup::gradient_hook is not bound: it returns a C++ callable for TrainerOptions::gradient_hook,
  // which fit_data_parallel installs itself.

  m.def("find_free_port", &find_free_port, py::arg("address") = "127.0.0.1",
        "Return a TCP port that was free on address when this call bound it; another process may take it first. "
        "Raises DistributedError when no socket can be bound.");
  m.def(
      "shard_rows",
      [](std::size_t rows, int rank, int world_size) {
        std::vector<std::size_t> shard = shard_rows(rows, rank, world_size);
        return to_array(std::vector<std::int64_t>(shard.begin(), shard.end()));
      },
      py::arg("rows"), py::arg("rank"), py::arg("world_size"),
      "Return the int64 row indices that rank trains on: rank, rank + world_size, ...; each rank gets "
      "rows // world_size rows, as DistributedSampler(drop_last=True) does.");
  m.def(
      "data_parallel_order",
      [](std::uint64_t seed, std::size_t epoch, std::size_t groups, std::size_t group_size) {
        return to_array(data_parallel_order(seed, epoch, groups, group_size));
      },
      py::arg("seed"), py::arg("epoch"), py::arg("groups"), py::arg("group_size"),
      "Return epoch's visiting order for data-parallel sampling (int64 array of groups * group_size rows): a "
      "permutation of group ids drawn from (seed, epoch), each expanded to group_size consecutive rows.");
}

/// Runs `job` like Trainer.fit: on a worker thread, with the progress callback guarded and Ctrl-C polled.
template <class Job>
TrainingResult fit_interruptible(TrainerOptions options, StopToken* token, Job job) {
  std::atomic<bool> stop{false};
  CallbackGuard guard;
  guard.stop = &stop;
  options.on_epoch = guard.wrap(options.on_epoch);
  options.stop_requested = &stop;

  TrainingResult result;
  run_interruptible([&] { result = job(options); }, stop, token, guard);
  return result;
}

void register_data_parallel(py::module_& m) {
  m.def(
      "fit_data_parallel",
      [](ProcessGroup& group, const TrainerOptions& options, const TrainingData& shard, const TrainingData& validation,
         StopToken* token) {
        return fit_interruptible(options, token, [&](const TrainerOptions& guarded) {
          return fit_data_parallel(group, guarded, shard, validation);
        });
      },
      py::arg("group"), py::arg("options"), py::arg("shard"), py::arg("validation"), py::arg("stop") = nullptr,
      "Train this rank's shard (see shard_rows) as part of group and return the same TrainingResult on every "
      "rank. validation must be the same rows on every rank. The GIL is released; Ctrl-C and stop behave as in "
      "Trainer.fit. Raises InvalidArgument when the shards differ in size, DistributedError when a peer fails.");
  m.def(
      "fit_data_parallel",
      [](const DistributedOptions& distributed, const TrainerOptions& options, const TrainingData& train,
         const TrainingData& validation, StopToken* token) {
        return fit_interruptible(options, token, [&](const TrainerOptions& guarded) {
          return fit_data_parallel(distributed, guarded, train, validation);
        });
      },
      py::arg("distributed"), py::arg("options"), py::arg("train"), py::arg("validation"), py::arg("stop") = nullptr,
      "Join the group of distributed, keep this rank's shard of train and train it as above. Every rank passes "
      "the same train and validation.");
}

void register_federated(py::module_& m) {
  py::class_<FederatedOptions>(m, "FederatedOptions",
                               "Options of federated training. The with_* methods set a field and return the same "
                               "object.")
      .def(py::init([](std::size_t rounds, std::size_t local_epochs, double proximal_mu, bool secure_aggregation) {
             FederatedOptions options;
             options.rounds = rounds;
             options.local_epochs = local_epochs;
             options.proximal_mu = proximal_mu;
             options.secure_aggregation = secure_aggregation;
             return options;
           }),
           py::arg("rounds") = 20, py::arg("local_epochs") = 1, py::arg("proximal_mu") = 0.0,
           py::arg("secure_aggregation") = false)
      .def_readwrite("rounds", &FederatedOptions::rounds, "Aggregation rounds, >= 1.")
      .def_readwrite("local_epochs", &FederatedOptions::local_epochs, "Epochs each client trains per round, >= 1.")
      .def_readwrite("proximal_mu", &FederatedOptions::proximal_mu,
                     "FedProx: each client adds mu / 2 * ||w - w_global||^2 to its loss; 0 is plain FedAvg.")
      .def_readwrite("secure_aggregation", &FederatedOptions::secure_aggregation,
                     "Pairwise masking, so that only the sum of the clients' weights is meaningful.")
      .def(
          "with_rounds",
          [](py::object self, std::size_t n) {
            self.cast<FederatedOptions&>().with_rounds(n);
            return self;
          },
          py::arg("n"), "Set rounds; return this object.")
      .def(
          "with_local_epochs",
          [](py::object self, std::size_t n) {
            self.cast<FederatedOptions&>().with_local_epochs(n);
            return self;
          },
          py::arg("n"), "Set local_epochs; return this object.")
      .def(
          "with_proximal_mu",
          [](py::object self, double mu) {
            self.cast<FederatedOptions&>().with_proximal_mu(mu);
            return self;
          },
          py::arg("mu"), "Set proximal_mu; return this object.")
      .def(
          "with_secure_aggregation",
          [](py::object self, bool on) {
            self.cast<FederatedOptions&>().with_secure_aggregation(on);
            return self;
          },
          py::arg("on"), "Set secure_aggregation; return this object.")
      .def("validate", &FederatedOptions::validate, "Raise InvalidArgument naming the first field out of range.");

  py::class_<FederatedRound>(m, "FederatedRound", "One aggregation round; every rank records the same values.")
      .def_readonly("round", &FederatedRound::round, "1-based.")
      .def_readonly("samples", &FederatedRound::samples, "Training rows summed over the clients.")
      .def_readonly("mean_train_loss", &FederatedRound::mean_train_loss,
                    "Client training losses of the round's last epoch, weighted by rows.")
      .def_readonly("seconds", &FederatedRound::seconds, "Wall-clock duration of the round, seconds.");

  py::class_<FederatedResult>(m, "FederatedResult", "Result of federated training. Every rank ends with the same network.")
      .def_readonly("network", &FederatedResult::network, "Global network after the last round.")
      .def_readonly("rounds", &FederatedResult::rounds, "FederatedRound per round.")
      .def_readonly("stop_reason", &FederatedResult::stop_reason,
                    "\"rounds\" when every round ran, or \"privacy_budget\" when a client's DP-SGD budget could not "
                    "pay for another round.")
      .def_readonly("privacy", &FederatedResult::privacy,
                    "PrivacySpent of this client over all rounds, composed with the RDP accountant; None on the "
                    "server and without DP-SGD.")
      .def_readonly("client_privacy", &FederatedResult::client_privacy,
                    "PrivacySpent of every client (client rank k at index k - 1); empty without DP-SGD.")
      .def_readonly("communication", &FederatedResult::communication, "This rank's CommunicationStats.");

  py::class_<PrivateSteps>(m, "PrivateSteps", "DP-SGD steps taken at one sampling rate and noise multiplier.")
      .def(py::init([](double sample_rate, double noise_multiplier, std::uint64_t steps) {
             return PrivateSteps{sample_rate, noise_multiplier, steps};
           }),
           py::arg("sample_rate"), py::arg("noise_multiplier"), py::arg("steps"))
      .def_readwrite("sample_rate", &PrivateSteps::sample_rate, "Poisson sampling probability q, in [0, 1].")
      .def_readwrite("noise_multiplier", &PrivateSteps::noise_multiplier,
                     "Noise standard deviation in units of the clipping norm.")
      .def_readwrite("steps", &PrivateSteps::steps, "Number of noisy gradient steps.");

  m.def("compose_private_steps", &compose_private_steps, py::call_guard<py::gil_scoped_release>(), py::arg("runs"),
        py::arg("delta"),
        "Compose DP-SGD runs on the same data: sum their RDP curves, then convert to (epsilon, delta) once. "
        "Returns EpsilonAtOrder. Raises InvalidArgument for delta outside (0, 1) or a run out of range.");

  m.def("run_federated_server", &run_federated_server, py::call_guard<py::gil_scoped_release>(), py::arg("group"),
        py::arg("options"), py::arg("config"),
        "Run the server of a federated group (rank 0, no data); clients are ranks 1 .. world_size - 1. config "
        "must be the clients' configuration. The GIL is released. Raises InvalidArgument when the clients' widths "
        "or configurations differ, DistributedError when a client fails.");
  m.def(
      "run_federated_client",
      [](ProcessGroup& group, const FederatedOptions& options, const TrainerOptions& trainer, const TrainingData& train,
         const TrainingData& validation) {
        // NOTE: Ctrl-C is raised only after the client's last round, because a client that stopped early would
        // leave the server and the other clients waiting until their timeout.
        TrainerOptions guarded = trainer;
        std::atomic<bool> stop{false};
        CallbackGuard guard;
        guard.stop = &stop;
        guarded.on_epoch = guard.wrap(guarded.on_epoch);

        FederatedResult result;
        run_interruptible([&] { result = run_federated_client(group, options, guarded, train, validation); }, stop,
                          nullptr, guard);
        return result;
      },
      py::arg("group"), py::arg("options"), py::arg("trainer"), py::arg("train"), py::arg("validation"),
      "Run one client: each round start from the global weights, train options.local_epochs epochs on train with "
      "trainer (client-side DP-SGD when trainer.config.privacy is set), and send the weights. The GIL is "
      "released.");

  m.def(
      "initial_parameters",
      [](const ModelConfig& config, std::size_t inputs, std::size_t outputs) {
        return to_array(initial_parameters(config, inputs, outputs));
      },
      py::arg("config"), py::arg("inputs"), py::arg("outputs"),
      "Return PyTorch's initialization of the trainer's network for config.seed as one flat float32 array in "
      "the layout of TrainerOptions.initial_parameters. outputs: 1 for binary and regression, the class count "
      "for multiclass.");
  m.def(
      "federated_preprocessor",
      [](ProcessGroup& group, const Preprocessor* local, std::size_t rows) {
        py::gil_scoped_release release;
        return federated_preprocessor(group, local, rows);
      },
      py::arg("group"), py::arg("local") = nullptr, py::arg("rows") = 0,
      "Build one Preprocessor for all clients from their locally fitted ones; only pooled statistics travel. The "
      "server passes local=None and rows=0.");
}

}  // namespace

void register_distributed_options(py::module_& m) { register_options(m); }

void register_distributed(py::module_& m) {
  register_process_group(m);
  register_data_parallel(m);
  register_federated(m);
}

}  // namespace lepton::python
