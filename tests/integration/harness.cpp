#include "harness.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "asio.hpp"
#include "fd.hpp"

namespace harness {

bool running_as_root() { return ::geteuid() == 0; }

namespace {
int g_skipped = 0;
}

bool skip_unless_root(const char* what) {
    if (running_as_root()) return false;
    ++g_skipped;
    WARN(std::string("skipped: ") + what + " need root");
    return true;
}

int skipped_cases() { return g_skipped; }

std::string run_user() {
    const char* u = std::getenv("IM_TEST_USER");
    return u ? u : "postgres";
}

int free_port() {
    // CTest runs several test programs at once. A port the kernel hands out
    // and we close again can be handed to another program before our
    // instance binds it (a postgres listening on '*' then loses 127.0.0.1 to
    // another test's HTTP server). So ports come from below the kernel's
    // ephemeral range, each claimed by a lock file held until this program
    // ends: the kernel releases the lock even when the program crashes. The
    // empty files stay: removing one races with a program claiming it.
    constexpr int first = 20000, last = 32000;
    static int next = first + static_cast<int>(::getpid() % (last - first));
    static std::vector<im::UniqueFd> held;
    std::filesystem::create_directories("/tmp/im-test-ports");
    ::chmod("/tmp/im-test-ports", 01777);
    for (int tries = 0; tries < last - first; ++tries) {
        int port = next;
        next = next + 1 >= last ? first : next + 1;
        std::string lock = "/tmp/im-test-ports/" + std::to_string(port);
        im::UniqueFd fd(::open(lock.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666));
        if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
        // Claimed among the tests; also free of anything else on the machine?
        boost::system::error_code ec;
        im::asio::io_context io;
        im::asio::ip::tcp::acceptor a(io);
        a.open(im::asio::ip::tcp::v4(), ec);
        if (!ec) a.bind({im::asio::ip::address_v4::any(), static_cast<unsigned short>(port)}, ec);
        if (ec) continue;
        held.push_back(std::move(fd));
        return port;
    }
    FAIL("no free port left for a test instance");
    return -1;
}

namespace {
std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out.push_back(c);
    }
    return out + "'";
}
std::string as_user_prefix() {
    if (!running_as_root()) return "";
    return "setpriv --reuid=" + run_user() + " --regid=" + run_user() +
           " --init-groups --reset-env -- ";
}
}  // namespace

std::string manager_binary() {
    // The build tree may sit where the unprivileged user cannot reach (a
    // checkout under /root): run a copy from a world-readable directory.
    static const std::string path = [] {
        if (!running_as_root()) return std::string(IM_BINARY);
        char tmpl[] = "/tmp/im-bin-XXXXXX";
        std::string dir = ::mkdtemp(tmpl);
        ::chmod(dir.c_str(), 0755);
        std::string copy = dir + "/instance-manager";
        std::filesystem::copy_file(IM_BINARY, copy,
                                   std::filesystem::copy_options::overwrite_existing);
        ::chmod(copy.c_str(), 0755);
        static std::string to_remove = dir;
        std::atexit([] { std::filesystem::remove_all(to_remove); });
        return copy;
    }();
    return path;
}

Shell sh(const std::string& command, bool as_user) {
    std::string full =
        as_user && running_as_root() ? as_user_prefix() + "sh -c " + quote(command) : command;
    full += " 2>&1";
    Shell r;
    FILE* p = ::popen(full.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

Instance::Instance(std::string n) : name(std::move(n)) {
    char tmpl[] = "/tmp/im-it-XXXXXX";
    root = ::mkdtemp(tmpl);
    ::chmod(root.c_str(), 0755);
    if (running_as_root()) {
        passwd* pw = ::getpwnam(run_user().c_str());
        REQUIRE(pw != nullptr);
        REQUIRE(::chown(root.c_str(), pw->pw_uid, pw->pw_gid) == 0);
    }
    pgdata = root + "/data";
    token_file = root + "/api-token";
    { std::ofstream(token_file) << "test-token-" << name << "\n"; }
    pg_port = free_port();
    http_port = free_port();
}

Instance::~Instance() {
    if (alive()) {
        signal(SIGQUIT);
        if (!wait_exit(20s)) {
            ::kill(pid_, SIGKILL);
            wait_exit(5s);
        }
    }
    // postgres children that outlived a killed manager in a failed test
    sh("pkill -KILL -f -- " + quote("-D " + pgdata) + " || true");
    if (!std::getenv("IM_TEST_KEEP")) std::filesystem::remove_all(root);
}

std::vector<std::string> Instance::command_line() const {
    if (!command_override.empty()) {
        std::vector<std::string> cmd = {manager_binary()};
        cmd.insert(cmd.end(), command_override.begin(), command_override.end());
        return cmd;
    }
    std::vector<std::string> cmd = {manager_binary(),
                                    "run",
                                    "--name",
                                    name,
                                    "--pgdata",
                                    pgdata,
                                    "--pg-port",
                                    std::to_string(pg_port),
                                    "--socket-dir",
                                    root,
                                    "--http-listen",
                                    address + ":" + std::to_string(http_port),
                                    "--fast-shutdown-timeout",
                                    "10s",
                                    "--smart-shutdown-timeout",
                                    smart_shutdown};
    if (with_token) {
        cmd.push_back("--api-token-file");
        cmd.push_back(token_file);
    }
    cmd.insert(cmd.end(), extra_args.begin(), extra_args.end());
    return cmd;
}

void Instance::start(bool as_pid1) {
    REQUIRE(!alive());
    exit_code_.reset();
    pid1_ = as_pid1;
    std::vector<std::string> argv;
    if (!netns.empty()) argv = {"ip", "netns", "exec", netns};
    if (!resolv_conf.empty())
        // A mount namespace of its own, where the file is bind-mounted over
        // /etc/resolv.conf (root only); sh execs, so the pid stays the manager's.
        argv.insert(argv.end(), {"unshare", "--mount", "--", "sh", "-c",
                                 "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
                                 resolv_conf});
    if (as_pid1)
        argv.insert(argv.end(), {"unshare", "--pid", "--fork", "--kill-child", "--mount-proc"});
    if (running_as_root())
        argv.insert(argv.end(), {"setpriv", "--reuid=" + run_user(), "--regid=" + run_user(),
                                 "--init-groups", "--reset-env", "--"});
    if (!env.empty()) {
        argv.push_back("env");
        argv.insert(argv.end(), env.begin(), env.end());
    }
    auto cmd = command_line();
    argv.insert(argv.end(), cmd.begin(), cmd.end());

    std::string logfile = root + "/manager.log";
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
        int fd = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::setpgid(0, 0);
        std::vector<char*> av;
        for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
        av.push_back(nullptr);
        ::execvp(av[0], av.data());
        ::_exit(127);
    }
}

int Instance::run_to_exit(std::chrono::seconds timeout) {
    start(false);
    auto code = wait_exit(timeout);
    REQUIRE(code.has_value());
    return *code;
}

bool Instance::alive() const { return pid_ > 0 && !exit_code_ && ::kill(pid_, 0) == 0; }

pid_t Instance::manager_pid() const {
    if (!pid1_) return pid_;
    // unshare forks the manager: it is unshare's only child.
    std::ifstream children("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                           "/children");
    pid_t child = -1;
    children >> child;
    return child;
}

std::optional<int> Instance::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    if (pid_ <= 0) return std::nullopt;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return exit_code_;
        }
        std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
}

void Instance::signal(int sig) {
    pid_t target = manager_pid();
    if (target > 0) ::kill(target, sig);
}

bool Instance::wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return cond();
}

bool Instance::wait_ready(std::chrono::milliseconds timeout) {
    bool ok = wait_until(
        [&] {
            auto r = get("/readyz");
            return r.ok() && r->status == 200;
        },
        timeout);
    if (!ok) UNSCOPED_INFO("manager log:\n" << log_tail());
    return ok;
}

im::Result<im::http_client::HttpReply> Instance::get(const std::string& path,
                                                     const std::string& method) {
    return im::http_client::http_request(
        method, {api_tls, address, std::to_string(http_port), path}, "", "", 5s, tls_client);
}

std::string Instance::token() const {
    std::ifstream in(token_file);
    std::string t;
    std::getline(in, t);
    return t;
}

im::Result<im::http_client::HttpReply> Instance::post(const std::string& path,
                                                      const std::string& body,
                                                      std::optional<std::string> tok) {
    return im::http_client::http_request("POST",
                                         {api_tls, address, std::to_string(http_port), path}, body,
                                         tok ? *tok : token(), 60s, tls_client);
}

nlohmann::json Instance::status() {
    auto r = get("/v1/status");
    if (!r || r->status != 200) return nlohmann::json::object();
    return nlohmann::json::parse(r->body, nullptr, false);
}

pid_t Instance::postmaster_pid() {
    auto s = status();
    if (!s.contains("postgres") || !s["postgres"]["pid"].is_number()) return -1;
    return s["postgres"]["pid"].get<pid_t>();
}

std::string Instance::app_password() const {
    std::ifstream in(pgdata + "/instance-manager/app.password");
    std::string p;
    std::getline(in, p);
    return p;
}

// The statement as psql arguments. One argument may not exceed 128 KiB
// (MAX_ARG_STRLEN; exec fails with E2BIG), and a test may ask about thousands
// of ids: a long statement goes through a file instead.
std::string Instance::sql_argument(const std::string& sql) {
    if (sql.size() < 16 * 1024) return " -c " + quote(sql);
    std::string file = root + "/statement-" + std::to_string(++statements_) + ".sql";
    { std::ofstream(file) << sql << "\n"; }
    ::chmod(file.c_str(), 0644);
    return " -f " + quote(file);
}

Shell Instance::psql(const std::string& sql, const std::string& user, const std::string& db,
                     std::optional<std::string> password) {
    std::string pw = password ? *password : (user == "app" ? app_password() : "");
    std::string conn = "host=" + address + " port=" + std::to_string(pg_port) + " user=" + user +
                       " dbname=" + db + " connect_timeout=5";
    return sh("PGPASSWORD=" + quote(pw) + " psql -X -A -t -v ON_ERROR_STOP=1 " + quote(conn) +
              sql_argument(sql));
}

Shell Instance::psql_local(const std::string& sql, const std::string& db) {
    std::string conn =
        "host=" + root + " port=" + std::to_string(pg_port) + " user=postgres dbname=" + db;
    return sh("psql -X -A -t -v ON_ERROR_STOP=1 " + quote(conn) + sql_argument(sql), true);
}

std::string Instance::log() const {
    std::ifstream in(root + "/manager.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string Instance::log_tail() const {
    std::string all = log();
    return all.size() > 6000 ? all.substr(all.size() - 6000) : all;
}

std::string pg_bin() {
    static std::string dir = [] {
        auto r = sh("pg_config --bindir");
        std::string d = r.out.substr(0, r.out.find('\n'));
        return d;
    }();
    return dir;
}

std::string Instance::control_state() {
    auto r = sh(pg_bin() + "/pg_controldata " + quote(pgdata), true);
    auto pos = r.out.find("Database cluster state:");
    if (pos == std::string::npos) return r.out;
    auto end = r.out.find('\n', pos);
    std::string line = r.out.substr(pos + 23, end - pos - 23);
    return line.substr(line.find_first_not_of(' '));
}

void Instance::replica_of(const Instance& primary) {
    token_file = primary.token_file;
    extra_args.insert(extra_args.end(),
                      {"--primary-conninfo", primary.upstream(), "--replication-password-file",
                       primary.pgdata + "/instance-manager/replication.password"});
}

std::string Instance::upstream() const {
    return "host=" + address + " port=" + std::to_string(pg_port);
}

nlohmann::json post_json(Instance& i, const std::string& path, const nlohmann::json& body,
                         unsigned expect) {
    auto r = i.post(path, body.dump());
    REQUIRE(r.ok());
    INFO(path << " " << body.dump() << " -> " << r->body);
    CHECK(r->status == expect);
    return nlohmann::json::parse(r->body, nullptr, false);
}

Writer::Writer(const std::string& conninfo, const std::string& file, long long first,
               const std::string& netns)
    : out(file) {
    std::string in = netns.empty() ? "" : "ip netns exec " + netns + " ";
    auto r = sh(in + std::string(IM_BENCH_WRITER) + " '" + conninfo + "' " +
                std::to_string(first) + " > " + file + " 2>/dev/null & echo $!");
    pid = std::stoi(r.out);
}

size_t Writer::lines() const {
    std::ifstream in(out);
    return static_cast<size_t>(std::count(std::istreambuf_iterator<char>(in), {}, '\n'));
}

std::vector<Writer::Commit> Writer::stop_commits() {
    ::kill(pid, SIGTERM);
    sh("while kill -0 " + std::to_string(pid) + " 2>/dev/null; do sleep 0.05; done");
    std::ifstream in(out);
    std::vector<Commit> commits;
    long long id = 0, ms = 0;
    std::string port;
    while (in >> id >> ms >> port) commits.push_back({id, ms});
    return commits;
}

std::vector<std::string> Writer::stop() {
    std::vector<std::string> ids;
    for (const auto& c : stop_commits()) ids.push_back(std::to_string(c.id));
    return ids;
}

bool holds_write_right(Instance& i) {
    auto s = i.status();
    return s.is_object() && s["authority"].is_object() &&
           s["authority"]["write_right"].is_object() &&
           s["authority"]["write_right"]["may_write"] == true;
}

std::string api_url(const Instance& i) {
    return "http://" + i.address + ":" + std::to_string(i.http_port);
}

void make_controller(Instance& ctl, const std::vector<Instance*>& members,
                     const std::vector<std::string>& extra) {
    ctl.token_file = members.front()->token_file;
    ctl.command_override = {"controller", "--api-token-file", ctl.token_file, "--listen",
                            "127.0.0.1:" + std::to_string(ctl.http_port)};
    for (const auto* m : members) {
        ctl.command_override.push_back("--member");
        ctl.command_override.push_back(m->name + "=" + api_url(*m));
    }
    ctl.command_override.insert(ctl.command_override.end(), extra.begin(), extra.end());
}

NetLab::NetLab(int members) : members_(members) {
    int id = ::getpid() % 100000;
    tag_ = "imt" + std::to_string(id);
    subnet_ = "10.213." + std::to_string(id % 250) + ".";
    std::string br = tag_ + "br";
    std::vector<std::string> cmds = {
        "ip netns add " + br,
        "ip -n " + br + " link set lo up",
        "ip -n " + br + " link add br0 type bridge",
        "ip -n " + br + " link set br0 up",
        "ip link add " + tag_ + "h type veth peer name host netns " + br,
        "ip -n " + br + " link set host master br0 up",
        "ip addr add " + subnet_ + "254/24 dev " + tag_ + "h",
        "ip link set " + tag_ + "h up",
    };
    for (int i = 0; i < members; ++i) {
        std::string n = ns(i), v = "v" + std::to_string(i);
        cmds.push_back("ip netns add " + n);
        cmds.push_back("ip -n " + n + " link set lo up");
        cmds.push_back("ip -n " + br + " link add " + v + " type veth peer name eth0 netns " + n);
        cmds.push_back("ip -n " + br + " link set " + v + " master br0 up");
        cmds.push_back("ip -n " + n + " addr add " + address(i) + "/24 dev eth0");
        cmds.push_back("ip -n " + n + " link set eth0 up");
    }
    for (const auto& cmd : cmds) {
        auto r = sh(cmd);
        INFO(cmd << ": " << r.out);
        REQUIRE(r.code == 0);
    }
}

NetLab::~NetLab() {
    sh("ip link del " + tag_ + "h 2>/dev/null");
    for (int i = 0; i < members_; ++i) sh("ip netns del " + ns(i) + " 2>/dev/null");
    sh("ip netns del " + tag_ + "br 2>/dev/null");
}

std::string NetLab::ns(int i) const { return tag_ + "m" + std::to_string(i); }
std::string NetLab::address(int i) const { return subnet_ + std::to_string(10 + i); }

std::string NetLab::host_address() const { return subnet_ + "254"; }

std::string NetLab::readdress(int i, int octet) {
    std::string now = subnet_ + std::to_string(octet);
    auto r = sh("ip -n " + ns(i) + " addr flush dev eth0 && ip -n " + ns(i) + " addr add " + now +
                "/24 dev eth0");
    INFO(r.out);
    REQUIRE(r.code == 0);
    return now;
}

void NetLab::link(int i, bool up) {
    REQUIRE(
        sh("ip -n " + tag_ + "br link set v" + std::to_string(i) + (up ? " up" : " down")).code ==
        0);
}

void NetLab::place(Instance& inst, int i) const {
    inst.netns = ns(i);
    inst.address = address(i);
    inst.pg_port = 5432;
    inst.http_port = 8000;
}

void start_replicas(const Instance& primary, const std::vector<Instance*>& replicas, bool as_pid1) {
    for (auto* r : replicas) {
        r->replica_of(primary);
        r->start(as_pid1);
    }
    for (auto* r : replicas) REQUIRE(r->wait_ready(120s));
}

nlohmann::json cluster_of(Instance& ctl) {
    auto r = ctl.get("/v1/cluster");
    if (!r || r->status != 200) return nlohmann::json::object();
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
}

std::string rw_conninfo(const std::vector<Instance*>& all) {
    std::string hosts, ports;
    for (const auto* i : all) {
        hosts += (hosts.empty() ? "" : ",") + i->address;
        ports += (ports.empty() ? "" : ",") + std::to_string(i->pg_port);
    }
    return "host=" + hosts + " port=" + ports + " user=app dbname=app password=" +
           all.front()->app_password() + " target_session_attrs=read-write connect_timeout=2";
}

void write_as_user(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    sh("chown " + run_user() + " " + path + " 2>/dev/null || true");
}

std::string show_setting(Instance& i, const std::string& name) {
    std::string out = i.psql_local("SHOW " + name).out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

int missing(Instance& i, const std::vector<std::string>& ids) {
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
    auto r = i.psql("SELECT count(*) FROM unnest('{" + list +
                    "}'::bigint[]) AS s(id) WHERE id NOT IN (SELECT id FROM bench_log)");
    return r.code == 0 ? std::stoi(r.out) : -1;
}

bool converged(Instance& ctl, const std::string& primary) {
    auto c = cluster_of(ctl);
    if (!c.contains("primary") || !c["primary"].is_string()) return false;
    std::string p = c["primary"];
    if (!primary.empty() && p != primary) return false;
    for (const auto& m : c["members"]) {
        if (m["name"] == p) {
            if (m["role"] != "primary" || m["ready"] != true) return false;
        } else if (m["role"] != "replica" || m["upstream"] != p || m["streaming"] != true) {
            return false;
        }
    }
    return true;
}

std::string primary_of(Instance& ctl) {
    auto c = cluster_of(ctl);
    return c.contains("primary") && c["primary"].is_string() ? c["primary"].get<std::string>() : "";
}

std::string sync_names(Instance& ctl) {
    const auto c = cluster_of(ctl);  // kept: a range over a temporary's member dangles
    for (const auto& m : c["members"])
        if (m.value("role", "") == "primary" && m["sync"].is_string())
            return m["sync"].get<std::string>();
    return "";
}

bool converged_in(Instance& ctl, const std::string& mode, const std::string& primary) {
    return converged(ctl, primary) && sync_names(ctl).rfind(mode, 0) == 0;
}

std::string new_primary(Instance& ctl, const std::string& old, std::chrono::milliseconds timeout) {
    std::string np;
    bool found = ctl.wait_until(
        [&] {
            np = primary_of(ctl);
            return !np.empty() && np != old;
        },
        timeout);
    return found ? np : "";
}

}  // namespace harness
