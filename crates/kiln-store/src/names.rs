//! Run names like MLflow's (`adjective-animal-NNN`) for runs created without one.

const ADJECTIVES: [&str; 24] = [
    "amazing", "bold", "brave", "bright", "calm", "clever", "crisp", "dapper", "eager", "fearless", "gentle",
    "glowing", "honest", "jolly", "keen", "lucky", "mellow", "nimble", "placid", "quiet", "rare", "sincere", "swift",
    "wise",
];
const ANIMALS: [&str; 24] = [
    "ant", "bass", "bat", "bear", "cat", "crab", "crow", "deer", "dove", "eel", "finch", "fox", "goat", "hare", "hawk",
    "koi", "lark", "lynx", "mole", "owl", "ram", "seal", "wolf", "yak",
];

/// A fresh name from the run id's randomness source.
pub fn generate() -> String {
    let r = uuid::Uuid::new_v4().as_u128();
    let a = ADJECTIVES[(r % 24) as usize];
    let b = ANIMALS[((r >> 8) % 24) as usize];
    let n = (r >> 16) % 1000;
    format!("{a}-{b}-{n}")
}
