//! The parameters describing the cloud a plan is for.
//!
//! Their defaults, with the sources they come from, live in one documented
//! file, `cloud_params.toml` beside this module, embedded at build time;
//! `local_params.toml` is the "local machine" profile laid over it. Both
//! use a small TOML subset (`key = number`, `#` comments) parsed here, so
//! that `--set key=value` and `--cloud FILE` share one parser and one set
//! of error messages.

use std::fmt;

/// The embedded defaults (see the file for what each key means and where
/// its value comes from).
pub const DEFAULT_PARAMS: &str = include_str!("cloud_params.toml");

/// The embedded "local machine" profile: overrides of [`DEFAULT_PARAMS`]
/// for the processes backend on one machine.
pub const LOCAL_PARAMS: &str = include_str!("local_params.toml");

macro_rules! cloud_params {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Cloud parameters; each field is documented in `cloud_params.toml`.
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        pub struct CloudParams {
            $($(#[$doc])* pub $name: f64,)*
        }

        impl CloudParams {
            /// Every key, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($name)),*];

            fn slot(&mut self, key: &str) -> Option<&mut f64> {
                match key {
                    $(stringify!($name) => Some(&mut self.$name),)*
                    _ => None,
                }
            }

            fn zero() -> CloudParams {
                CloudParams { $($name: f64::NAN,)* }
            }

            fn missing(&self) -> Option<&'static str> {
                $(if self.$name.is_nan() { return Some(stringify!($name)); })*
                None
            }
        }
    };
}

cloud_params! {
    /// Speed of one Lambda vCPU relative to one core of the calibrating machine.
    lambda_vcpu_speed,
    /// MB of memory per full vCPU.
    lambda_mb_per_vcpu,
    /// Most vCPUs a function gets.
    lambda_max_vcpus,
    /// Memory of each worker, MB.
    lambda_memory_mb,
    /// Threads a worker's codec keeps busy.
    worker_threads,
    /// 0: a CPU per worker; >0: workers share this many cores.
    machine_cores,
    /// Median worker start-up, seconds.
    cold_start_s,
    /// Log-space sigma of the start-up time.
    cold_start_sigma,
    /// CPU-seconds of fixed start-up work per attempt that competes for cores.
    task_cpu_s,
    /// CPU-seconds of fixed work per phase (store writes, hashing).
    phase_cpu_s,
    /// Invocations per second.
    invoke_rate_per_s,
    /// Cap on concurrent workers (0: the worker count).
    max_concurrency,
    /// 0: invoke in chunk order; 1: position-major.
    launch_order,
    /// Execution environments Lambda adds per scaling period.
    lambda_scale_step,
    /// Lambda's scaling period, seconds.
    lambda_scale_period_s,
    /// The account's concurrent executions.
    account_concurrency,
    /// S3 first-byte latency, seconds.
    s3_latency_s,
    /// S3 throughput per connection, MB/s.
    s3_throughput_mb_s,
    /// 1: the coordinator's input upload counts.
    upload_input,
    /// Coordinator bandwidth, MB/s.
    coordinator_throughput_mb_s,
    /// Chunk GETs in flight during assembly.
    assembly_parallelism,
    /// Speed of the coordinator's output write, MB/s.
    output_write_mb_s,
    /// 1: the output is assembled in S3 (`-o s3://`).
    output_in_s3,
    /// Smallest part of a multipart upload but the last, MiB.
    s3_min_part_mb,
    /// Fixed seconds of the coordinator's wrap-up after the last task.
    finish_s,
    /// Relay latency per hop, seconds.
    relay_latency_s,
    /// Relay throughput per connection, MB/s.
    relay_throughput_mb_s,
    /// Relay instances.
    relays,
    /// vCPUs of each relay's machine.
    relay_cores,
    /// Delivered MB per relay CPU-second.
    relay_mb_per_cpu_s,
    /// Network limit of each relay, MB/s.
    relay_nic_mb_s,
    /// MB of states each relay holds for the job.
    relay_memory_mb,
    /// Connection slots of each relay.
    relay_max_connections,
    /// 0: the faster of relay and store; 1: relay; 2: store alone.
    state_channel,
    /// Mean delay of a store poll, seconds.
    store_poll_s,
    /// Fraction of attempts that straggle.
    straggler_prob,
    /// Pareto shape of a straggler's slowdown.
    straggler_alpha,
    /// Largest slowdown.
    straggler_max_factor,
    /// Probability an attempt fails.
    failure_prob,
    /// Seconds before a failed attempt is retried.
    retry_delay_s,
    /// Attempts per task before the job fails.
    max_attempts,
    /// 1: speculative twins on.
    speculation,
    /// Twin deadline as a multiple of the median finished run time.
    speculation_factor,
    /// Finished tasks needed before twins start.
    speculation_min_finished,
    /// Shortest twin deadline, seconds.
    speculation_floor_s,
    /// 1: chain tasks' twins timed by the median tail.
    twin_chain_tails,
    /// Shortest twin deadline of a chain tail, seconds.
    speculation_tail_floor_s,
    /// USD per GB-second of Lambda.
    price_gb_s,
    /// 1: plan for arm64 workers.
    arm64,
    /// Speed of an arm64 vCPU relative to an x86 one.
    arm64_speed,
    /// USD per GB-second of Lambda on arm64.
    price_gb_s_arm64,
    /// USD per Lambda request.
    price_per_request,
    /// USD per S3 GET.
    price_s3_get,
    /// USD per S3 PUT.
    price_s3_put,
    /// USD per hour of the relay server.
    relay_usd_per_hour,
}

/// A bad parameter file or `--set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError(pub String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

impl Default for CloudParams {
    fn default() -> Self {
        let mut p = CloudParams::zero();
        p.apply_text(DEFAULT_PARAMS, "cloud_params.toml")
            .expect("the embedded cloud_params.toml parses");
        if let Some(k) = p.missing() {
            panic!("the embedded cloud_params.toml lacks {k}");
        }
        p
    }
}

impl CloudParams {
    /// The "local machine" profile: the defaults with [`LOCAL_PARAMS`] over
    /// them.
    pub fn local() -> CloudParams {
        let mut p = CloudParams::default();
        p.apply_text(LOCAL_PARAMS, "local_params.toml")
            .expect("the embedded local_params.toml parses");
        p
    }

    /// Sets one parameter, checking its range.
    ///
    /// # Errors
    /// An unknown key (the message lists the known ones) or a value that is
    /// not a finite number in the key's range.
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), ParamError> {
        if !value.is_finite() {
            return Err(ParamError(format!("{key}: {value} is not a finite number")));
        }
        let positive = matches!(
            key,
            "lambda_vcpu_speed"
                | "lambda_mb_per_vcpu"
                | "lambda_max_vcpus"
                | "lambda_memory_mb"
                | "worker_threads"
                | "invoke_rate_per_s"
                | "s3_throughput_mb_s"
                | "coordinator_throughput_mb_s"
                | "assembly_parallelism"
                | "relay_throughput_mb_s"
                | "lambda_scale_step"
                | "lambda_scale_period_s"
                | "account_concurrency"
                | "output_write_mb_s"
                | "s3_min_part_mb"
                | "relays"
                | "relay_cores"
                | "relay_mb_per_cpu_s"
                | "relay_nic_mb_s"
                | "relay_max_connections"
                | "arm64_speed"
                | "straggler_alpha"
                | "max_attempts"
                | "speculation_factor"
        );
        let probability = matches!(key, "straggler_prob" | "failure_prob");
        let slot = self.slot(key).ok_or_else(|| {
            ParamError(format!(
                "unknown cloud parameter {key:?} (known: {})",
                CloudParams::KEYS.join(", ")
            ))
        })?;
        if positive && value <= 0.0 {
            return Err(ParamError(format!("{key} must be > 0, got {value}")));
        }
        if value < 0.0 {
            return Err(ParamError(format!("{key} must be >= 0, got {value}")));
        }
        if probability && value >= 1.0 {
            return Err(ParamError(format!("{key} must be below 1, got {value}")));
        }
        if matches!(key, "state_channel") && !matches!(value as i64, 0..=2) {
            return Err(ParamError(format!(
                "{key} must be 0 (auto), 1 (relay) or 2 (store), got {value}"
            )));
        }
        if key == "straggler_max_factor" && value < 1.0 {
            return Err(ParamError(format!("{key} must be >= 1, got {value}")));
        }
        *slot = value;
        Ok(())
    }

    /// Applies a `key=value` (as given to `--set`).
    ///
    /// # Errors
    /// No `=`, a value that is not a number, or [`CloudParams::set`]'s.
    pub fn set_str(&mut self, assignment: &str) -> Result<(), ParamError> {
        let (k, v) = assignment
            .split_once('=')
            .ok_or_else(|| ParamError(format!("--set {assignment:?}: expected KEY=VALUE")))?;
        let (k, v) = (k.trim(), v.trim());
        let value: f64 = v
            .parse()
            .map_err(|_| ParamError(format!("{k}: {v:?} is not a number")))?;
        self.set(k, value)
    }

    /// Applies every `key = value` line of a parameter file; `origin` names
    /// the file in errors.
    ///
    /// # Errors
    /// The line number and what is wrong with it.
    pub fn apply_text(&mut self, text: &str, origin: &str) -> Result<(), ParamError> {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            self.set_str(line)
                .map_err(|e| ParamError(format!("{origin}:{}: {e}", n + 1)))?;
        }
        Ok(())
    }

    /// vCPUs a worker of `lambda_memory_mb` gets (fractional below one).
    pub fn vcpus(&self) -> f64 {
        (self.lambda_memory_mb / self.lambda_mb_per_vcpu).min(self.lambda_max_vcpus)
    }

    /// Speed of one worker relative to one core of the calibrating
    /// machine, before any sharing of cores: Lambda gives CPU in proportion
    /// to memory, and a worker uses at most `worker_threads` of it.
    pub fn worker_speed(&self) -> f64 {
        let arch = if self.arm64 > 0.0 {
            self.arm64_speed
        } else {
            1.0
        };
        arch * self.lambda_vcpu_speed * self.vcpus().min(self.worker_threads) / self.worker_threads
    }

    /// USD per GB-second for the workers' architecture.
    pub fn price_gb_s_now(&self) -> f64 {
        if self.arm64 > 0.0 {
            self.price_gb_s_arm64
        } else {
            self.price_gb_s
        }
    }

    /// Delivered state bytes per second all relays together can move.
    pub fn relay_capacity_bytes_s(&self) -> f64 {
        self.relays * (self.relay_cores * self.relay_mb_per_cpu_s).min(self.relay_nic_mb_s) * 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_vcpus_follow_memory() {
        let mut p = CloudParams::default();
        assert_eq!(p.price_gb_s, 0.0000166667);
        p.set("lambda_memory_mb", 1769.0).unwrap();
        assert!((p.vcpus() - 1.0).abs() < 1e-12);
        p.set("lambda_memory_mb", 10240.0).unwrap();
        assert!((p.vcpus() - 5.788).abs() < 0.01);
        p.set("lambda_memory_mb", 884.5).unwrap();
        assert!((p.worker_speed() - 0.5).abs() < 1e-12);
        assert_eq!(CloudParams::local().machine_cores, 2.0);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let mut p = CloudParams::default();
        let e = p.set_str("relay_latency_s=-1").unwrap_err().0;
        assert!(e.contains("relay_latency_s"), "{e}");
        let e = p.set_str("no_such_key=1").unwrap_err().0;
        assert!(
            e.contains("no_such_key") && e.contains("cold_start_s"),
            "{e}"
        );
        let e = p.set_str("cold_start_s").unwrap_err().0;
        assert!(e.contains("KEY=VALUE"), "{e}");
        let e = p
            .apply_text("# c\n\ns3_latency_s = fast\n", "f.toml")
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("f.toml:3:") && e.contains("s3_latency_s"),
            "{e}"
        );
        let e = p.set_str("failure_prob=1").unwrap_err().0;
        assert!(e.contains("failure_prob"), "{e}");
    }
}
