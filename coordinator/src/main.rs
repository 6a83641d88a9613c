fn main() {
    println!("excam");
}
