"""User-facing texts in Bahasa Indonesia (default) and English; templates call ``t(key)``."""

from __future__ import annotations

from portal.reference import Lang

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (Bahasa Indonesia, English)
    "site_name": ("Lapor Binjai", "Lapor Binjai"),
    "tagline": ("Layanan pengaduan warga Kota Binjai", "Citizen reports for the city of Binjai"),
    "nav_report": ("Buat laporan", "Make a report"),
    "nav_track": ("Lacak laporan", "Track a report"),
    "nav_list": ("Daftar laporan", "Reports"),
    "nav_staff": ("Petugas", "Staff"),
    "lang_switch": ("English", "Bahasa Indonesia"),
    "home_intro": (
        "Sampaikan pengaduan, aspirasi atau pertanyaan Anda tanpa harus antre. Setiap laporan diverifikasi "
        "dalam 3 hari kerja dan dijawab oleh dinas terkait dalam 5 hari kerja.",
        "Send a complaint, proposal or question without queueing. Every report is verified within 3 working "
        "days and answered by the responsible agency within 5 working days.",
    ),
    "form_title": ("Buat laporan", "Make a report"),
    "f_category": ("Kategori", "Category"),
    "f_title": ("Judul", "Title"),
    "f_description": ("Isi laporan", "Description"),
    "f_description_hint": (
        "Ceritakan apa, di mana dan kapan. Maksimal 4.000 karakter.",
        "What, where and when. At most 4,000 characters.",
    ),
    "f_kelurahan": ("Kelurahan", "Kelurahan (neighbourhood)"),
    "f_address": ("Alamat atau patokan (opsional)", "Address or landmark (optional)"),
    "f_point": ("Titik lokasi (opsional)", "Map point (optional)"),
    "f_lat": ("Lintang (contoh 3.6001)", "Latitude (e.g. 3.6001)"),
    "f_lon": ("Bujur (contoh 98.4854)", "Longitude (e.g. 98.4854)"),
    "f_photos": (
        "Foto (maksimal 3, JPEG/PNG/WebP, 5 MB per foto)",
        "Photos (up to 3, JPEG/PNG/WebP, 5 MB each)",
    ),
    "f_privacy": ("Siapa yang boleh melihat?", "Who may see it?"),
    "privacy_public": (
        "Publik: laporan tampil di daftar publik tanpa nama dan kontak Anda",
        "Public: listed publicly without your name or contact",
    ),
    "privacy_anonymous": (
        "Anonim: nama Anda hanya terlihat oleh admin, tidak oleh dinas",
        "Anonymous: only the admins see your name, not the agency",
    ),
    "privacy_confidential": (
        "Rahasia: laporan tidak pernah tampil di publik",
        "Confidential: the report is never shown publicly",
    ),
    "f_contact": ("Kontak (opsional, tidak pernah dipublikasikan)", "Contact (optional, never published)"),
    "f_name": ("Nama", "Name"),
    "f_phone": ("Nomor HP", "Phone"),
    "f_email": ("Email", "E-mail"),
    "f_website": ("Jangan diisi", "Leave empty"),
    "btn_check_similar": ("Periksa laporan serupa", "Check similar reports"),
    "btn_submit": ("Kirim laporan", "Send report"),
    "similar_title": ("Laporan serupa yang sedang ditangani", "Similar reports being handled"),
    "similar_none": ("Tidak ada laporan serupa.", "No similar reports."),
    "submitted_title": ("Laporan terkirim", "Report sent"),
    "submitted_code": ("Simpan kode pelacakan ini:", "Keep this tracking code:"),
    "track_title": ("Lacak laporan", "Track a report"),
    "f_code": ("Kode pelacakan", "Tracking code"),
    "btn_track": ("Lacak", "Track"),
    "f_remember": (
        "Ingat laporan ini di perangkat ini (hanya kodenya; jangan dicentang di HP atau komputer bersama)",
        "Remember this report on this device (its code only; leave unticked on a shared phone or computer)",
    ),
    "mine_title": ("Laporan yang diingat di perangkat ini", "Reports remembered on this device"),
    "btn_forget": ("Lupakan semua dari perangkat ini", "Forget them all on this device"),
    "btn_remember": ("Ingat laporan ini di perangkat ini", "Remember this report on this device"),
    "key_title": ("Kunci pelapor Anda", "Your reporter key"),
    "key_hint": (
        "Hanya Anda yang menerima kunci ini, dan hanya sekali: simpan tautan di bawah (salin, atau catat). "
        "Kunci diperlukan untuk menambah informasi, membuka kembali, menilai atau merahasiakan laporan. "
        "Peramban ini sudah mengingatnya; dengan tautan ini perangkat lain juga bisa. Jangan dibagikan.",
        "Only you receive this key, and only once: keep the link below (copy it, or write it down). The "
        "key is needed to add information, reopen, rate or make the report confidential. This browser "
        "already remembers it; with the link another device can too. Do not share it.",
    ),
    "key_enter": ("Anda pelapornya?", "Are you the reporter?"),
    "key_enter_hint": (
        "Masukkan kunci pelapor (atau tautan kunci) yang Anda terima saat melapor atau lewat e-mail.",
        "Enter the reporter key (or key link) you received when reporting or by e-mail.",
    ),
    "f_key": ("Kunci pelapor", "Reporter key"),
    "btn_key": ("Buka sebagai pelapor", "Open as the reporter"),
    "err_reporter_key": (
        "Hanya pelapor (dengan kunci pelapor) yang dapat melakukan ini.",
        "Only the reporter (with the reporter key) can do this.",
    ),
    "duplicate_hidden": ("Laporan asal bersifat rahasia.", "The original report is confidential."),
    "status_title": ("Status laporan", "Report status"),
    "history": ("Riwayat", "History"),
    "add_info": ("Tambah informasi", "Add information"),
    "btn_add_info": ("Kirim informasi", "Send information"),
    "reopen": ("Buka kembali laporan", "Reopen the report"),
    "reopen_hint": (
        "Masalah belum selesai? Anda dapat membuka kembali dalam 14 hari.",
        "Not solved? You can reopen within 14 days.",
    ),
    "f_reason": ("Alasan", "Reason"),
    "rate": ("Penilaian Anda", "Your verdict"),
    "rate_question": (
        "Apakah masalah yang Anda laporkan sudah selesai?",
        "Is the problem you reported solved?",
    ),
    "verdict_solved": ("Sudah selesai", "Solved"),
    "verdict_partly": ("Selesai sebagian", "Partly solved"),
    "verdict_unsolved": ("Belum selesai", "Not solved"),
    "f_comment": ("Komentar (opsional)", "Comment (optional)"),
    "btn_rate": ("Kirim penilaian", "Send verdict"),
    "f_feedback": ("Penilaian pelapor", "Reporter's verdict"),
    "privacy_change": ("Privasi laporan", "Report privacy"),
    "privacy_now": ("Sekarang", "Now"),
    "privacy_change_hint": (
        "Anda dapat memperketat privasi kapan saja, tetapi tidak melonggarkannya kembali:",
        "You can make it stricter at any time, but not loosen it again:",
    ),
    "btn_privacy": ("Ubah privasi", "Change privacy"),
    "btn_reopen": ("Buka kembali", "Reopen"),
    "list_title": ("Laporan warga", "Citizen reports"),
    "list_empty": ("Belum ada laporan.", "No reports yet."),
    "all": ("Semua", "All"),
    "btn_filter": ("Saring", "Filter"),
    "status_submitted": ("Menunggu verifikasi", "Awaiting verification"),
    "status_verified": ("Terverifikasi", "Verified"),
    "status_dispatched": ("Diteruskan ke dinas", "Sent to the agency"),
    "status_responded": ("Dijawab dinas", "Answered by the agency"),
    "status_closed": ("Selesai", "Closed"),
    "resolution_resolved_direct": ("Diselesaikan langsung oleh dinas", "Resolved directly by the agency"),
    "resolution_needs_budget": (
        "Memerlukan penganggaran (usulan anggaran)",
        "Needs budgeting (budget proposal)",
    ),
    "eval_verified_on_time": ("Verifikasi tepat waktu", "Verified on time"),
    "eval_responded_on_time": ("Dijawab tepat waktu", "Answered on time"),
    "role_admin": ("Admin", "Admin"),
    "role_agency": ("Petugas dinas", "Agency officer"),
    "role_operator": ("Operator ruang kendali", "Command-room operator"),
    "role_viewer": ("Pemantau (DPRD)", "Viewer (council)"),
    "privacy_name_public": ("Publik", "Public"),
    "privacy_name_anonymous": ("Anonim", "Anonymous"),
    "privacy_name_confidential": ("Rahasia", "Confidential"),
    "still_open": ("Masih terbuka", "Still open"),
    "total_row": ("Jumlah", "Total"),
    "resolution_rejected": ("Ditolak", "Rejected"),
    "resolution_duplicate": ("Duplikat dari laporan lain", "Duplicate of another report"),
    "entry_created": ("Laporan diterima", "Report received"),
    "entry_verified": ("Laporan diverifikasi", "Report verified"),
    "entry_dispatched": ("Diteruskan ke dinas", "Sent to the agency"),
    "entry_responded": ("Jawaban dinas", "Agency's answer"),
    "entry_closed": ("Laporan ditutup", "Report closed"),
    "entry_reopened": ("Dibuka kembali oleh pelapor", "Reopened by the reporter"),
    "entry_info": ("Informasi tambahan dari pelapor", "More information from the reporter"),
    "entry_rated_solved": ("Pelapor: sudah selesai", "Reporter: solved"),
    "entry_rated_partly": ("Pelapor: selesai sebagian", "Reporter: partly solved"),
    "entry_rated_unsolved": ("Pelapor: belum selesai", "Reporter: not solved"),
    "entry_to_anonymous": ("Pelapor menyembunyikan namanya", "The reporter hid their name"),
    "entry_to_confidential": (
        "Pelapor menjadikan laporan rahasia",
        "The reporter made the report confidential",
    ),
    "entry_redacted": (
        "Petugas menyamarkan data pribadi dalam teks laporan",
        "Staff redacted personal data in the report's text",
    ),
    "actor_pelapor": ("Pelapor", "Reporter"),
    "actor_admin": ("Admin BCC", "BCC admin"),
    "errors_intro": ("Periksa kembali isian berikut:", "Please check these fields:"),
    "err_category": ("Pilih kategori.", "Choose a category."),
    "err_title_required": ("Judul wajib diisi.", "A title is required."),
    "err_title_long": ("Judul maksimal 200 karakter.", "The title may have at most 200 characters."),
    "err_description_required": ("Isi laporan wajib diisi.", "A description is required."),
    "err_description_long": ("Isi laporan maksimal 4.000 karakter.", "At most 4,000 characters."),
    "err_kelurahan": ("Pilih kelurahan di Kota Binjai.", "Choose a kelurahan of Binjai."),
    "err_address_long": ("Alamat terlalu panjang.", "The address is too long."),
    "err_point": (
        "Titik lokasi harus angka di wilayah Binjai.",
        "The map point must be numbers inside Binjai.",
    ),
    "err_outside": (
        "Lokasi ini berada di luar Kota Binjai. Laporan hanya untuk wilayah Kota Binjai; isi titik lokasi "
        "di Binjai atau kosongkan.",
        "This location is outside the city of Binjai. Reports are for Binjai only; give a point in Binjai "
        "or leave it empty.",
    ),
    "meta_description": (
        "Lapor Binjai: sampaikan pengaduan, aspirasi atau pertanyaan kepada Pemerintah Kota Binjai dan "
        "lacak tindak lanjutnya.",
        "Lapor Binjai: send a complaint, proposal or question to the city of Binjai and track its follow-up.",
    ),
    "loc_button": ("Gunakan lokasi saya", "Use my location"),
    "loc_found": ("Kelurahan diusulkan dari lokasi Anda:", "Kelurahan proposed from your location:"),
    "loc_denied": (
        "Lokasi tidak tersedia. Isi titik lokasi secara manual atau kosongkan.",
        "Your location is not available. Type the map point or leave it empty.",
    ),
    "loc_offline": (
        "Titik lokasi terisi; pilih kelurahan sendiri (tidak ada sambungan).",
        "Map point filled in; choose the kelurahan yourself (no connection).",
    ),
    "pwa_saved": (
        "Tidak ada sambungan. Laporan disimpan di ponsel ini dan dikirim otomatis saat tersambung kembali.",
        "No connection. The report is kept on this phone and sent automatically when the connection returns.",
    ),
    "pwa_sent": (
        "Laporan yang disimpan sudah terkirim. Kode laporan:",
        "Your saved report was sent. Tracking code:",
    ),
    "pwa_key": (
        "Kunci rahasia Anda (hanya ditampilkan sekali; simpan tautan ini untuk menindaklanjuti laporan):",
        "Your secret key (shown once; keep this link to act on your report):",
    ),
    "pwa_refused": ("Laporan yang disimpan ditolak:", "Your saved report was refused:"),
    "err_privacy": ("Pilih siapa yang boleh melihat.", "Choose who may see the report."),
    "err_name_long": ("Nama terlalu panjang.", "The name is too long."),
    "err_phone": ("Nomor HP tidak valid.", "Invalid phone number."),
    "err_email": ("Alamat email tidak valid.", "Invalid e-mail address."),
    "err_info_required": ("Tulis informasi atau lampirkan foto.", "Write something or attach a photo."),
    "err_reason_required": ("Alasan wajib diisi.", "A reason is required."),
    "err_reply_required": ("Jawaban wajib diisi.", "A reply is required."),
    "err_closed": ("Laporan sudah ditutup.", "The report is closed."),
    "err_not_reopenable": (
        "Hanya laporan yang diselesaikan langsung yang dapat dibuka kembali.",
        "Only reports resolved directly can be reopened.",
    ),
    "err_reopen_window": (
        "Batas 14 hari untuk membuka kembali sudah lewat.",
        "The 14 days for reopening have passed.",
    ),
    "err_verdict": ("Pilih salah satu penilaian.", "Choose one verdict."),
    "err_privacy_stricter": (
        "Pilih tingkat privasi yang lebih ketat dari sekarang.",
        "Choose a privacy level stricter than the current one.",
    ),
    "err_feedback_closed": (
        "Penilaian hanya dapat diberikan sekali, dalam 30 hari setelah laporan ditutup.",
        "A verdict can be given once, within 30 days of the closure.",
    ),
    "err_transition": (
        "Langkah ini tidak sesuai status laporan.",
        "This step does not fit the report's status.",
    ),
    "err_verify_first": ("Verifikasi laporan terlebih dahulu.", "Verify the report first."),
    "err_resolution": ("Pilih alasan penutupan.", "Choose a closing reason."),
    "err_duplicate_code": ("Kode laporan asli tidak ditemukan.", "The original report's code was not found."),
    "err_agency": ("Dinas tidak dikenal.", "Unknown agency."),
    "err_form": (
        "Formulir tidak valid. Muat ulang halaman dan coba lagi.",
        "Invalid form. Reload the page and try again.",
    ),
    "photo_empty": ("Foto kosong.", "The photo is empty."),
    "photo_too_large": ("Foto terlalu besar (maksimal 5 MB).", "The photo is too large (at most 5 MB)."),
    "photo_too_many": ("Maksimal 3 foto.", "At most 3 photos."),
    "photo_too_many_pixels": (
        "Resolusi foto terlalu besar (maksimal 40 megapiksel).",
        "The photo has too many pixels (at most 40 megapixels).",
    ),
    "photo_bad_type": (
        "Hanya foto JPEG, PNG atau WebP yang diterima.",
        "Only JPEG, PNG or WebP photos are accepted.",
    ),
    "error_404": ("Halaman atau laporan tidak ditemukan.", "Page or report not found."),
    "error_403": (
        "Akses ditolak. Muat ulang halaman dan coba lagi.",
        "Access denied. Reload the page and try again.",
    ),
    "error_413": (
        "Kiriman terlalu besar (maksimal 3 foto @ 5 MB).",
        "The upload is too large (at most 3 photos of 5 MB).",
    ),
    "error_429": (
        "Terlalu banyak laporan dari alamat ini. Coba lagi nanti.",
        "Too many reports from this address. Try again later.",
    ),
    "error_400": ("Permintaan tidak valid.", "Invalid request."),
    "err_month": (
        "Bulan tidak valid: tulis TTTT-BB dengan angka biasa, misalnya 2026-11.",
        "Invalid month: write YYYY-MM in plain digits, e.g. 2026-11.",
    ),
    "error_500": (
        "Terjadi kesalahan. Laporan Anda tetap aman; coba lagi.",
        "Something went wrong. Please try again.",
    ),
    "error_title": ("Maaf", "Sorry"),
    "back_home": ("Kembali ke beranda", "Back to the home page"),
    "photo": ("Foto", "Photo"),
    "no_js_note": ("Halaman ini bekerja tanpa JavaScript.", "This page works without JavaScript."),
    # staff accounts, second factor, personal data (portal/web/staff_auth.py, staff_admin.py)
    "nav_accounts": ("Akun petugas", "Staff accounts"),
    "nav_contact_log": ("Log akses kontak", "Contact access log"),
    "holiday_gap": (
        "Hari libur nasional dan cuti bersama tahun {year} (SKB 3 Menteri) belum dimasukkan: tenggat "
        "laporan di sekitar hari libur itu salah. Tambahkan ke portal/data/holidays.yaml.",
        "The {year} national holidays and cuti bersama (SKB 3 Menteri) are not entered yet: report "
        "deadlines around those days are wrong. Add them to portal/data/holidays.yaml.",
    ),
    "nav_password": ("Ganti kata sandi", "Change password"),
    "tfa_title": ("Verifikasi dua langkah", "Two-step verification"),
    "tfa_code": ("Kode 6 angka dari aplikasi autentikator", "6-digit code from your authenticator app"),
    "tfa_recovery": ("Atau kode pemulihan", "Or a recovery code"),
    "tfa_recovery_hint": (
        "Setiap kode pemulihan hanya berlaku satu kali.",
        "Each recovery code works only once.",
    ),
    "tfa_enrol_intro": (
        "Akun admin dan operator wajib memakai verifikasi dua langkah. Tambahkan akun ini di aplikasi "
        "autentikator (misalnya FreeOTP atau Google Authenticator) dengan kunci atau URI di bawah, "
        "lalu masukkan kode yang muncul.",
        "Admin and operator accounts must use two-step verification. Add this account to an "
        "authenticator app (for example FreeOTP or Google Authenticator) with the key or URI below, "
        "then enter the code it shows.",
    ),
    "tfa_secret": ("Kunci", "Key"),
    "tfa_uri": ("URI penyiapan", "Provisioning URI"),
    "tfa_wrong": ("Kode salah atau sudah dipakai.", "Wrong or already used code."),
    "tfa_codes_title": ("Kode pemulihan Anda", "Your recovery codes"),
    "tfa_codes_intro": (
        "Simpan kode ini di tempat aman (dicetak atau pengelola kata sandi). Kode ini hanya tampil sekali "
        "dan masing-masing berlaku satu kali bila ponsel Anda hilang.",
        "Keep these codes somewhere safe (printed or in a password manager). They are shown only once; "
        "each works once if you lose your phone.",
    ),
    "tfa_continue": ("Lanjut", "Continue"),
    "btn_confirm": ("Konfirmasi", "Confirm"),
    "pw_title": ("Ganti kata sandi", "Change password"),
    "pw_current": ("Kata sandi sekarang", "Current password"),
    "pw_new": ("Kata sandi baru (minimal 12 karakter)", "New password (at least 12 characters)"),
    "pw_repeat": ("Ulangi kata sandi baru", "Repeat the new password"),
    "pw_done": (
        "Kata sandi diganti. Sesi Anda di perangkat lain sudah diakhiri.",
        "Password changed. Your sessions on other devices have ended.",
    ),
    "pw_wrong_current": ("Kata sandi sekarang salah.", "The current password is wrong."),
    "pw_mismatch": ("Kedua kata sandi baru tidak sama.", "The two new passwords differ."),
    "pw_too_short": (
        "Kata sandi baru minimal 12 karakter.",
        "The new password needs at least 12 characters.",
    ),
    "acc_username": ("Nama pengguna", "Username"),
    "acc_role": ("Peran", "Role"),
    "acc_state": ("Status", "State"),
    "acc_active": ("aktif", "active"),
    "acc_inactive": ("nonaktif", "deactivated"),
    "acc_2fa": ("Dua langkah", "Two-step"),
    "acc_2fa_on": ("terpasang", "enrolled"),
    "acc_2fa_missing": ("belum (wajib)", "not yet (required)"),
    "acc_2fa_none": ("tidak wajib", "not required"),
    "acc_deactivate": ("Nonaktifkan", "Deactivate"),
    "acc_reactivate": ("Aktifkan", "Reactivate"),
    "acc_reset_pw": ("Atur ulang kata sandi", "Reset password"),
    "acc_reset_2fa": ("Atur ulang dua langkah", "Reset two-step"),
    "acc_new_password": (
        "Kata sandi baru (tampil sekali, serahkan langsung kepada pemilik akun):",
        "New password (shown once, hand it to the account's owner in person):",
    ),
    "cv_intro": (
        "Setiap kali halaman petugas menampilkan nama, nomor HP atau email pelapor (UU PDP 27/2022).",
        "Every time a staff page showed a reporter's name, phone or e-mail (UU PDP 27/2022).",
    ),
    "cv_when": ("Waktu", "When"),
    "cv_who": ("Petugas", "Staff"),
    "cv_report": ("Laporan", "Report"),
    "cv_none": ("Belum ada akses.", "No views yet."),
    "contact_erased": (
        "Kontak pelapor sudah dihapus (masa simpan berakhir).",
        "The reporter's contact details were erased (retention period over).",
    ),
    "redact_title": ("Samarkan data pribadi", "Redact personal data"),
    "redact_field": ("Bagian", "Part"),
    "redact_field_title": ("Judul", "Title"),
    "redact_field_description": ("Isi laporan", "Description"),
    "redact_phrases": (
        "Teks yang disamarkan (satu per baris, persis seperti dalam laporan)",
        "Text to redact (one per line, exactly as in the report)",
    ),
    "redact_btn": ("Samarkan", "Redact"),
    "redact_originals": (
        "Teks asli sebelum disamarkan (hanya admin)",
        "Original text before redaction (admins only)",
    ),
    "err_redact_field": ("Bagian tidak dikenal.", "Unknown part."),
    "err_redact_empty": ("Tulis teks yang akan disamarkan.", "Write the text to redact."),
    "err_redact_missing": (
        "Teks itu tidak ada dalam laporan.",
        "That text is not in the report.",
    ),
    # ---- development proposals (usulan pembangunan; portal/services/proposals.py) ----
    "nav_proposals": ("Usulan pembangunan", "Development proposals"),
    "proposals_title": ("Usulan pembangunan", "Development proposals"),
    "proposals_intro": (
        "Laporan warga yang memerlukan anggaran menjadi usulan pembangunan dan mengikuti siklus perencanaan "
        "daerah: Musrenbang kelurahan, kecamatan dan kota, RKPD, KUA-PPAS, sampai APBD dan pelaksanaan.",
        "Citizen reports that need a budget become development proposals and follow the city's planning "
        "cycle: the kelurahan, kecamatan and city Musrenbang, RKPD, KUA-PPAS, up to the budget (APBD) and "
        "the work itself.",
    ),
    "proposals_empty": ("Belum ada usulan.", "No proposals yet."),
    "proposal_title": ("Usulan pembangunan", "Development proposal"),
    "proposal_of_report": ("Usulan pembangunan untuk laporan ini", "Development proposal for this report"),
    "proposal_stage": ("Tahap", "Stage"),
    "proposal_timeline": ("Perjalanan usulan", "The proposal's way"),
    "proposal_reports": ("Laporan warga terkait", "Related citizen reports"),
    "proposal_reports_none": (
        "Tidak ada laporan publik yang terkait.",
        "No public report is linked.",
    ),
    "proposal_calendar": ("Jadwal siklus perencanaan", "Planning cycle calendar"),
    "f_agency": ("Instansi (OPD)", "Agency (OPD)"),
    "f_kecamatan": ("Kecamatan", "Kecamatan (district)"),
    "f_budget_year": ("Tahun anggaran", "Budget year"),
    "f_priority": ("Prioritas", "Priority"),
    "f_channel": ("Jalur usulan", "Channel"),
    "f_estimated_cost": ("Perkiraan biaya", "Estimated cost"),
    "f_funded": ("Dana APBD", "Funded in the budget (APBD)"),
    "f_stage_note": ("Catatan atau alasan (tampil untuk publik)", "Note or reason (shown to the public)"),
    "f_proposal": (
        "Usulan: kosongkan untuk usulan baru, atau isi nomor usulan yang ada",
        "Proposal: leave empty for a new one, or give an existing proposal's number",
    ),
    "f_proposal_title": (
        "Judul usulan baru (kosong: judul laporan; wajib untuk laporan rahasia)",
        "New proposal's title (empty: the report's title; required for a confidential report)",
    ),
    "f_amount_hint": (
        "Rupiah tanpa desimal, contoh 150.000.000; paling banyak",
        "Whole rupiah, e.g. 150.000.000; at most",
    ),
    "btn_stage": ("Simpan tahap", "Save the stage"),
    "btn_cost": ("Simpan perkiraan biaya", "Save the estimate"),
    "proposals_by_kecamatan": ("Per kecamatan", "Per kecamatan"),
    "proposals_by_agency": ("Per instansi", "Per agency"),
    "proposals_count": ("Jumlah usulan", "Proposals"),
    "proposal_decided_by": ("Diputuskan oleh", "Decided by"),
    "stage_proposed": ("Diusulkan", "Proposed"),
    "stage_musrenbang_kelurahan": ("Musrenbang kelurahan", "Kelurahan planning forum (Musrenbang)"),
    "stage_musrenbang_kecamatan": ("Musrenbang kecamatan", "Kecamatan planning forum (Musrenbang)"),
    "stage_forum_perangkat_daerah": ("Forum Perangkat Daerah", "Agencies' forum (Forum Perangkat Daerah)"),
    "stage_musrenbang_kota": ("Musrenbang kota", "City planning forum (Musrenbang kota)"),
    "stage_rkpd": ("Masuk RKPD", "In the annual development plan (RKPD)"),
    "stage_kua_ppas": ("Masuk KUA-PPAS", "In the budget policy and ceilings (KUA-PPAS)"),
    "stage_apbd": ("Didanai APBD", "Funded in the city budget (APBD)"),
    "stage_executed": ("Dilaksanakan (selesai)", "Carried out (done)"),
    "stage_rejected": ("Ditolak", "Rejected"),
    "stage_deferred": ("Ditunda ke tahun berikutnya", "Deferred to a later year"),
    "priority_high": ("Tinggi", "High"),
    "priority_medium": ("Sedang", "Medium"),
    "priority_low": ("Rendah", "Low"),
    "channel_musrenbang_kelurahan": ("Musrenbang kelurahan", "Kelurahan Musrenbang"),
    "channel_musrenbang_kecamatan": ("Musrenbang kecamatan", "Kecamatan Musrenbang"),
    "channel_musrenbang_kota": ("Musrenbang kota", "City Musrenbang"),
    "channel_pokir_dprd": ("Pokok-pokok pikiran DPRD", "The council's proposals (pokir DPRD)"),
    "pentry_created": ("Usulan dibuat", "Proposal created"),
    "pentry_linked": ("Laporan warga digabungkan", "A citizen report joined"),
    "pentry_stage": ("Tahap", "Stage"),
    "pentry_cost": ("Perkiraan biaya", "Cost estimate"),
    "err_amount_negative": (
        "Jumlah rupiah harus lebih dari nol.",
        "The amount in rupiah must be more than zero.",
    ),
    "err_amount_number": (
        "Jumlah rupiah harus berupa angka bulat, contoh 150.000.000.",
        "The amount in rupiah must be a whole number, e.g. 150.000.000.",
    ),
    "err_amount_ceiling": (
        "Jumlah rupiah melebihi batas yang ditetapkan; periksa angkanya.",
        "The amount in rupiah is above the configured ceiling; check the number.",
    ),
    "err_stage": ("Tahap tidak dikenal.", "Unknown stage."),
    "err_stage_same": ("Usulan sudah berada di tahap itu.", "The proposal is already at that stage."),
    "err_stage_skip": (
        "Usulan hanya dapat maju satu tahap; melompati tahap atau mundur hanya boleh oleh admin.",
        "A proposal moves one stage forward at a time; only an admin may skip stages or go back.",
    ),
    "err_stage_final": (
        "Usulan ini sudah selesai atau ditolak; hanya admin yang dapat mengubahnya.",
        "This proposal is done or rejected; only an admin may change it.",
    ),
    "err_stage_reason": (
        "Tulis alasan penolakan atau penundaan.",
        "Write the reason for the rejection or deferral.",
    ),
    "err_budget_year": ("Tahun anggaran harus 4 angka, contoh 2028.", "The budget year must be 4 digits."),
    "err_defer_year": (
        "Usulan hanya dapat ditunda ke tahun anggaran yang lebih akhir.",
        "A proposal can only be deferred to a later budget year.",
    ),
    "err_funded_required": (
        "Tulis jumlah dana yang ditetapkan dalam APBD.",
        "Give the amount funded in the budget (APBD).",
    ),
    "err_proposal": ("Nomor usulan tidak dikenal.", "Unknown proposal number."),
    "err_proposal_title": ("Judul usulan wajib diisi.", "The proposal needs a title."),
    "err_proposal_priority": ("Prioritas tidak dikenal.", "Unknown priority."),
    "err_proposal_channel": ("Jalur usulan tidak dikenal.", "Unknown channel."),
    "pentry_edited": ("Data usulan diubah", "Proposal details changed"),
    "btn_edit_proposal": ("Simpan data usulan", "Save the proposal's details"),
    "err_proposal_final": (
        "Usulan itu sudah selesai atau ditolak; buat usulan baru.",
        "That proposal is done or rejected; make a new one.",
    ),
    "err_proposal_confidential": (
        "Laporan ini rahasia: judulnya tidak boleh tampil di publik. Tulis judul usulan sendiri.",
        "This report is confidential: its title must not appear in public. Write a title for the proposal.",
    ),
    # notification channel on the form (docs/portal.md, "Notification channels")
    "f_notify_channel": ("Kabari perkembangan laporan lewat", "Tell me how the report goes by"),
    "notify_channel_email": ("E-mail (isi alamat e-mail di atas)", "E-mail (give the address above)"),
    "notify_channel_sms": ("SMS ke nomor HP di atas", "SMS to the phone number above"),
    "f_notify_channel_hint": (
        "SMS hanya ke nomor HP Indonesia, contoh 0812 3456 7890 atau +62 812 3456 7890.",
        "SMS only to an Indonesian mobile number, e.g. 0812 3456 7890 or +62 812 3456 7890.",
    ),
    "err_channel": ("Pilihan pemberitahuan tidak dikenal.", "Unknown notification choice."),
    "err_phone_sms": (
        "Untuk SMS, isi nomor HP Indonesia yang benar, contoh 0812 3456 7890.",
        "For SMS, give a valid Indonesian mobile number, e.g. 0812 3456 7890.",
    ),
    "err_sms_unavailable": (
        "Pemberitahuan lewat SMS belum tersedia; pilih e-mail.",
        "Notifications by SMS are not available; choose e-mail.",
    ),
    # SMS texts (portal/services/notify.py): one SMS each, 160 GSM-7 characters with the longest code
    # and link (tests/portal/services/test_sms_texts.py); {stage} is shortened if it would not fit
    "sms_created": (
        "Lapor Binjai: laporan Anda diterima, kode {code}. Simpan kode ini. Status: {url}",
        "Lapor Binjai: we received your report, code {code}. Keep this code. Status: {url}",
    ),
    "sms_verified": (
        "Lapor Binjai: laporan {code} sudah diverifikasi. Status: {url}",
        "Lapor Binjai: report {code} was verified. Status: {url}",
    ),
    "sms_dispatched": (
        "Lapor Binjai: laporan {code} diteruskan ke dinas terkait. Status: {url}",
        "Lapor Binjai: report {code} was sent to the responsible agency. Status: {url}",
    ),
    "sms_responded": (
        "Lapor Binjai: dinas sudah menanggapi laporan {code}. Baca: {url}",
        "Lapor Binjai: the agency replied to report {code}. Read it: {url}",
    ),
    "sms_closed": (
        "Lapor Binjai: laporan {code} selesai. Hasil dan penilaian: {url}",
        "Lapor Binjai: report {code} was closed. Outcome and rating: {url}",
    ),
    "sms_reopened": (
        "Lapor Binjai: laporan {code} dibuka kembali. Status: {url}",
        "Lapor Binjai: report {code} was reopened. Status: {url}",
    ),
    "sms_proposal": (
        "Lapor Binjai {code}: usulan kini di tahap {stage}. {url}",
        "Lapor Binjai {code}: proposal stage now {stage}. {url}",
    ),
    # the kelurahan map on /daftar: each kelurahan is a link to the form with it chosen
    "map_kelurahan_title": (
        "Peta Kota Binjai (utara di atas) dan titik laporan: ketuk kelurahan untuk membuat laporan di sana.",
        "Map of Binjai (north up) with the report points: tap a kelurahan to make a report there.",
    ),
    "map_kelurahan_link": ("Buat laporan di kelurahan {name}", "Make a report in kelurahan {name}"),
    # ---- agencies answer for deadlines (issue 19 item 5) and the yearly proposal view (item 4) ----------
    "role_kepala_dinas": ("Kepala dinas", "Agency head"),
    "err_one_head": (
        "Dinas ini sudah punya kepala dinas yang aktif; nonaktifkan dulu akun itu.",
        "This agency already has an active head; deactivate that account first.",
    ),
    "nav_agency": ("Halaman dinas", "Agency page"),
    "agencies_title": ("Halaman dinas", "Agency pages"),
    "agency_open": ("Laporan terbuka", "Open reports"),
    "agency_overdue": ("Lewat tenggat", "Overdue"),
    "agency_due_soon": ("Jatuh tempo hari ini atau besok", "Due today or tomorrow"),
    "agency_due": ("Tenggat", "Due"),
    "agency_status": ("Status", "Status"),
    "agency_none_open": ("Tidak ada laporan terbuka.", "No open reports."),
    "agency_on_time": ("Ketepatan waktu", "On time"),
    "agency_this_month": ("Bulan ini", "This month"),
    "agency_last_month": ("Bulan lalu", "Last month"),
    "agency_rate_none": ("belum ada", "none yet"),
    "agency_proposals": ("Usulan pembangunan dinas ini", "This agency's development proposals"),
    "agency_totals_only": (
        "Peran Anda melihat angka ringkasan saja, tanpa laporan atau usulan satu per satu.",
        "Your role sees the totals only, not the reports or proposals one by one.",
    ),
    "agency_head": ("Kepala dinas", "Agency head"),
    "agency_no_head": ("belum ditetapkan", "not set"),
    "yearly_title": ("Usulan per tahun anggaran", "Proposals by budget year"),
    "yearly_total": ("Jumlah", "Total"),
    "yearly_csv": ("Unduh CSV tahunan", "Download the yearly CSV"),
    "yearly_none": ("Belum ada usulan untuk tahun anggaran ini.", "No proposals for this budget year yet."),
    "btn_show": ("Tampilkan", "Show"),
    # e-mails to agency officers and heads, in the recipient's language (portal/services/agency.py)
    "mail_dispatch_subject": ("[{code}] Laporan baru untuk {agency}", "[{code}] New report for {agency}"),
    "mail_dispatch_body": (
        "Laporan {code} ({category}, Kelurahan {kelurahan}) diteruskan kepada {agency}. "
        "Batas waktu tanggapan: {due}.",
        "Report {code} ({category}, kelurahan {kelurahan}) was forwarded to {agency}. Response due: {due}.",
    ),
    "mail_open": ("Buka laporan: {url}", "Open the report: {url}"),
    "mail_footer": (
        "Pusat Komando Kota Binjai - e-mail otomatis, mohon tidak dibalas.",
        "Binjai Command Center - automatic e-mail, please do not reply.",
    ),
    "mail_digest_subject": (
        "[BCC] Tenggat laporan {agency} {day}",
        "[BCC] Report deadlines of {agency} {day}",
    ),
    "mail_digest_intro": (
        "Laporan {agency} yang lewat tenggat atau jatuh tempo hari ini dan besok ({day}):",
        "Reports of {agency} that are overdue or due today and tomorrow ({day}):",
    ),
    "digest_overdue": ("Lewat tenggat", "Overdue"),
    "digest_today": ("Jatuh tempo hari ini", "Due today"),
    "digest_tomorrow": ("Jatuh tempo besok", "Due tomorrow"),
    "mail_digest_page": ("Halaman dinas: {url}", "Agency page: {url}"),
    "mail_escalation_subject": (
        "[{code}] ESKALASI: tenggat {deadline} terlewati",
        "[{code}] ESCALATION: {deadline} deadline passed",
    ),
    "mail_escalation_body": (
        "Tenggat {deadline} laporan {code} ({category}, Kelurahan {kelurahan}) untuk {agency} berakhir "
        "{due} tanpa tindak lanjut. Anda menerima e-mail ini sebagai kepala dinas.",
        "The {deadline} deadline of report {code} ({category}, kelurahan {kelurahan}) for {agency} ended "
        "{due} without action. You receive this e-mail as the agency's head.",
    ),
    "deadline_verify": ("verifikasi", "verification"),
    "deadline_respond": ("tanggapan", "response"),
}


def translate(key: str, lang: Lang) -> str:
    """The text of ``key`` in ``lang``; unknown keys are returned as they are (visible in tests)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]
