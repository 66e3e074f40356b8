//! The agent-runner image: `clawsim-agent` linked statically, alone in an image `FROM scratch`.
//!
//! The engine has no registry and no base images, so the image must need nothing from outside:
//! the binary is built with `+crt-static` for an explicit target (so build scripts and proc
//! macros stay dynamic and only the binary is static), checked to have no ELF interpreter, and
//! sent to the engine's build API as an in-memory tar context. The tag carries a hash of the
//! binary, so an unchanged binary is never built into an image twice.
//!
//! The binary is built in its own target dir (`target/e2e-agent`): the outer `cargo test` holds
//! the lock of the main target dir while the tests run, and building there would wait forever.

use crate::engine::{connect, on_docker_thread, LABEL_E2E};
use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, RemoveImageOptions};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Rust target the static binary is built for.
pub const AGENT_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where the binary sits in the image (its entrypoint).
pub const AGENT_PATH_IN_IMAGE: &str = "/clawsim-agent";
/// Environment variable naming a prebuilt static `clawsim-agent`, which skips the cargo build.
pub const AGENT_BIN_ENV: &str = "CLAWSIM_AGENT_BIN";

/// Builds (once per process) the static agent-runner and its image, and returns the image tag.
/// An image with the same tag already in the engine is reused.
pub fn ensure_agent_image() -> Result<String, String> {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let binary_path = agent_binary()?;
            let binary = std::fs::read(&binary_path)
                .map_err(|e| format!("{}: {e}", binary_path.display()))?;
            check_static_elf(&binary).map_err(|e| format!("{}: {e}", binary_path.display()))?;
            let tag = image_tag(&binary);
            let tag_for_build = tag.clone();
            on_docker_thread(move || async move {
                let docker = connect().await?;
                if docker.inspect_image(&tag_for_build).await.is_ok() {
                    return Ok(());
                }
                build_image(&docker, &tag_for_build, binary).await?;
                prune_old_images(&docker, &tag_for_build).await;
                Ok(())
            })?;
            Ok(tag)
        })
        .clone()
}

/// Images of earlier binaries are removed once they are an hour old, so a developer's engine
/// does not fill up with one image per build; younger ones may still serve another process.
const IMAGE_PRUNE_AGE_S: i64 = 3_600;

/// Best effort: removes clawsim-agent images other than `keep` older than
/// [`IMAGE_PRUNE_AGE_S`]; an image a container still uses is refused by the engine and kept.
async fn prune_old_images(docker: &bollard::Docker, keep: &str) {
    let options = ListImagesOptions {
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_E2E}=1")],
        )])),
        ..Default::default()
    };
    let Ok(images) = docker.list_images(Some(options)).await else {
        return;
    };
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    for image in images {
        let old = now_s - image.created > IMAGE_PRUNE_AGE_S;
        if old && !image.repo_tags.iter().any(|tag| tag == keep) {
            let _ = docker
                .remove_image(&image.id, None::<RemoveImageOptions>, None)
                .await;
        }
    }
}

/// The workspace root (the parent of this crate's manifest dir).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e crate sits inside the workspace")
        .to_path_buf()
}

/// The static binary: `$CLAWSIM_AGENT_BIN` if set, else built by cargo.
fn agent_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(AGENT_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    build_static_agent()
}

/// `cargo build --release` of `clawsim-agent` with `+crt-static`, in `target/e2e-agent`.
fn build_static_agent() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target").join("e2e-agent");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!(
        "clawsim-e2e: building static clawsim-agent in {}",
        target_dir.display()
    );
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "clawsim-core",
            "--bin",
            "clawsim-agent",
        ])
        .args(["--target", AGENT_TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Debug info is of no use inside the image and triples its size.
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C strip=debuginfo",
        )
        // Flags of the outer build (a coverage or sanitizer run) must not leak into this one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .output()
        .map_err(|e| format!("run {cargo}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "static build of clawsim-agent failed ({}):\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    Ok(target_dir
        .join(AGENT_TARGET)
        .join("release")
        .join("clawsim-agent"))
}

/// Checks that `elf` is an x86-64 ELF executable with no program interpreter (`PT_INTERP`),
/// i.e. that it runs in an empty image.
pub fn check_static_elf(elf: &[u8]) -> Result<(), String> {
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 0x3e;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    if u16_at(0x12) != EM_X86_64 {
        return Err(format!("ELF machine {:#x} is not x86-64", u16_at(0x12)));
    }
    let header_table_offset = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let header_size = u16_at(0x36) as usize;
    let header_count = u16_at(0x38) as usize;
    for index in 0..header_count {
        let at = header_table_offset + index * header_size;
        let Some(header) = elf.get(at..at + 4) else {
            return Err("truncated program header table".into());
        };
        if u32::from_le_bytes(header.try_into().unwrap()) == PT_INTERP {
            return Err("dynamically linked (it names a program interpreter)".into());
        }
    }
    Ok(())
}

/// `clawsim-agent:e2e-<FNV-1a 64 of the binary>`.
pub fn image_tag(binary: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in binary {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("clawsim-agent:e2e-{hash:016x}")
}

/// The build context: a Dockerfile and the binary, as a tar archive in memory.
pub fn build_context(binary: &[u8]) -> Result<Vec<u8>, String> {
    let dockerfile = format!(
        "FROM scratch\nCOPY clawsim-agent {AGENT_PATH_IN_IMAGE}\n\
         ENV TMPDIR=/tmp\nENTRYPOINT [\"{AGENT_PATH_IN_IMAGE}\"]\n"
    );
    let mut archive = tar::Builder::new(Vec::new());
    let mut append = |name: &str, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        archive
            .append_data(&mut header, name, data)
            .map_err(|e| format!("build context {name}: {e}"))
    };
    append("Dockerfile", 0o644, dockerfile.as_bytes())?;
    append("clawsim-agent", 0o755, binary)?;
    archive
        .into_inner()
        .map_err(|e| format!("build context: {e}"))
}

async fn build_image(docker: &bollard::Docker, tag: &str, binary: Vec<u8>) -> Result<(), String> {
    let context = build_context(&binary)?;
    let options = BuildImageOptions {
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        labels: Some(HashMap::from([(LABEL_E2E.to_string(), "1".to_string())])),
        ..Default::default()
    };
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(item) = progress.next().await {
        let info = item.map_err(|e| format!("build image {tag}: {e}\n{log}"))?;
        if let Some(error) = info.error {
            return Err(format!("build image {tag}: {error}\n{log}"));
        }
        log.push_str(info.stream.as_deref().unwrap_or(""));
    }
    docker
        .inspect_image(tag)
        .await
        .map(|_| ())
        .map_err(|e| format!("image {tag} missing after build: {e}\n{log}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_binary_is_refused() {
        // The test binary itself links glibc dynamically.
        let me = std::fs::read("/proc/self/exe").unwrap();
        let err = check_static_elf(&me).unwrap_err();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn non_elf_input_is_refused() {
        assert!(check_static_elf(b"#!/bin/sh\necho hi\n").is_err());
        assert!(check_static_elf(&[0u8; 128]).is_err());
    }

    #[test]
    fn an_elf_without_interpreter_passes() {
        // A minimal ELF64 x86-64 header with one PT_LOAD program header.
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x12] = 0x3e;
        elf[0x20] = 64; // e_phoff
        elf[0x36] = 56; // e_phentsize
        elf[0x38] = 1; // e_phnum
        elf[64] = 1; // PT_LOAD
        assert_eq!(check_static_elf(&elf), Ok(()));
        elf[64] = 3; // PT_INTERP
        assert!(check_static_elf(&elf).is_err());
    }

    #[test]
    fn tag_depends_on_the_binary() {
        assert_eq!(image_tag(b"a"), image_tag(b"a"));
        assert_ne!(image_tag(b"a"), image_tag(b"b"));
        assert!(image_tag(b"a").starts_with("clawsim-agent:e2e-"));
    }

    #[test]
    fn build_context_holds_dockerfile_and_executable_binary() {
        let context = build_context(b"\x7fELF...").unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("Dockerfile".into(), 0o644),
                ("clawsim-agent".into(), 0o755)
            ]
        );
    }
}
